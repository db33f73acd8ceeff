package inventory

import "testing"

func threeHosts() *Cluster {
	return &Cluster{Path: "lab.yaml", Hosts: []Host{
		{Name: "cp1", Roles: []string{RoleControlPlane}},
		{Name: "w1", Roles: []string{RoleWorker}},
		{Name: "cp2", Roles: []string{RoleWorker, RoleControlPlane}},
	}}
}

func TestSelect(t *testing.T) {
	tests := []struct {
		names   []string
		want    string
		wantErr string
	}{
		{nil, "cp1,w1,cp2", ""},
		{[]string{"cp2", "cp1"}, "cp1,cp2", ""}, // file order, not flag order
		{[]string{" w1 ", "w1", ""}, "w1", ""},
		{[]string{"w1", "cp3", "wl"}, "", `no host named "cp3" (did you mean "cp1"?), "wl" (did you mean "w1"?) in lab.yaml; its hosts are cp1, w1, cp2`},
		{[]string{"db"}, "", `no host named "db" in lab.yaml; its hosts are cp1, w1, cp2`},
	}
	for _, tt := range tests {
		got, err := threeHosts().Select(tt.names)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Select(%q) error = %v\nwant %s", tt.names, err, tt.wantErr)
			}
			continue
		}
		if err != nil || names(got) != tt.want {
			t.Errorf("Select(%q) = %s, %v; want %s", tt.names, names(got), err, tt.want)
		}
	}
}

func TestHostLookups(t *testing.T) {
	c := threeHosts()
	if got := names(c.ControlPlanes()); got != "cp1,cp2" {
		t.Errorf("ControlPlanes = %s", got)
	}
	if h := c.FirstControlPlane(); h != &c.Hosts[0] {
		t.Errorf("FirstControlPlane = %v", h)
	}
	if h := c.Host("w1"); h != &c.Hosts[1] {
		t.Errorf("Host(w1) = %v", h)
	}
	if h := c.Host("nope"); h != nil {
		t.Errorf("Host(nope) = %v", h)
	}
	if h := (&Cluster{}).FirstControlPlane(); h != nil {
		t.Errorf("FirstControlPlane of no hosts = %v", h)
	}
}
