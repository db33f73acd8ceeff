package main

import (
	"encoding/json"
	"slices"
	"testing"
)

// A failed run names every failed host and step; the check apply is tried
// again only when every failure is a connection.
func TestReportFailures(t *testing.T) {
	for _, tc := range []struct {
		name, json  string
		failures    []string
		onlyConnect bool
	}{
		{"connects", `{"hosts":[{"name":"lab1","error":"connect: dial tcp: i/o timeout"},{"name":"lab2","steps":[{"name":"hostprep/swap","status":"unchanged"}]}]}`,
			[]string{"lab1: connect: dial tcp: i/o timeout"}, true},
		{"a step too", `{"hosts":[{"name":"lab1","error":"connect: refused"},{"name":"lab2","steps":[{"name":"runtime/service","status":"failed","error":"exit 1"}]}]}`,
			[]string{"lab1: connect: refused", "lab2 runtime/service: exit 1"}, false},
		{"a probe", `{"hosts":[{"name":"lab1","error":"probe: the session ended"}]}`,
			[]string{"lab1: probe: the session ended"}, false},
		{"none", `{"hosts":[{"name":"lab1","steps":[{"name":"hostprep/swap","status":"changed"}]}]}`, nil, false},
	} {
		var r kprepReport
		if err := json.Unmarshal([]byte(tc.json), &r); err != nil {
			t.Fatal(err)
		}
		if got := r.failures(); !slices.Equal(got, tc.failures) {
			t.Errorf("%s: failures %q, want %q", tc.name, got, tc.failures)
		}
		if got := r.onlyConnectFailures(); got != tc.onlyConnect {
			t.Errorf("%s: onlyConnectFailures %v, want %v", tc.name, got, tc.onlyConnect)
		}
	}
}
