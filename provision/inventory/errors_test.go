package inventory

import "testing"

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "c.yaml", Line: 3, Column: 5, Field: "hosts[0].name", Msg: "required"}, "c.yaml:3:5: hosts[0].name: required"},
		{Error{File: "c.yaml", Line: 3, Msg: "YAML syntax: x"}, "c.yaml:3: YAML syntax: x"},
		{Error{Field: "kind", Msg: "required"}, "kind: required"},
		{Error{File: "c.yaml", Msg: "empty"}, "c.yaml: empty"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"address", "name", "roles", "ssh", "privateKeyFile", "connectTimeout"}
	tests := map[string]string{
		"adress":     "address",
		"Address":    "address",
		"role":       "roles",
		"privateKey": "privateKeyFile",
		"nmae":       "name", // two letters swapped count as one edit
		"port":       "",
		"x":          "",
	}
	for got, want := range tests {
		if s := suggest(got, known); s != want {
			t.Errorf("suggest(%q) = %q, want %q", got, s, want)
		}
	}
}

func TestErrorSinkStopsAtMax(t *testing.T) {
	s := &errorSink{file: "f"}
	for range maxErrors + 10 {
		s.add(pos{1, 1}, "x", "bad")
	}
	if len(s.list) != maxErrors+1 || !s.full || s.list[maxErrors].Msg != "too many errors; stopped after 50" {
		t.Errorf("sink has %d entries, full=%v, last %v", len(s.list), s.full, s.list[len(s.list)-1])
	}
}
