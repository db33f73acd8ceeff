package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// kubeadm's stacked etcd is asked directly, not through the API server
// (whose health is what is in question), with curl and the etcd
// health-check client certificate every control plane has: the member
// list from the control plane's own etcd, then each member's /health.
// kubeadm runs etcd without its auth, so any client certificate of the
// etcd CA may read the member list and remove a member.

const etcdPKI = kubeDir + "/pki/etcd"

// etcdCurl is curl with the etcd CA and health-check client certificate.
func etcdCurl(args ...string) string {
	return "curl -sS --max-time 5 --cacert " + etcdPKI + "/ca.crt --cert " + etcdPKI + "/healthcheck-client.crt --key " +
		etcdPKI + "/healthcheck-client.key " + shell.Join(args...)
}

// etcdLocal is the control plane's own etcd, which kubeadm makes listen on
// 127.0.0.1 too.
const etcdLocal = "https://127.0.0.1:2379"

// etcdMember is a member of the etcd cluster as its v3 JSON gateway
// lists it (64-bit IDs come as strings there).
type etcdMember struct {
	ID         etcdID   `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// etcdID reads a member ID written as a JSON string or number.
type etcdID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *etcdID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return fmt.Errorf("etcd member ID %s: %w", b, err)
	}
	*id = etcdID(s)
	return nil
}

// etcdMembers lists the members through the control plane ex reaches.
func etcdMembers(ctx context.Context, ex provision.Executor) ([]etcdMember, error) {
	res, err := ex.Run(ctx, transport.Command{Line: etcdCurl("-X", "POST", etcdLocal+"/v3/cluster/member/list", "-d", "{}")})
	if err != nil {
		return nil, fmt.Errorf("list the etcd members: %w", err)
	}
	var list struct {
		Members []etcdMember `json:"members"`
	}
	if err := json.Unmarshal(res.Stdout, &list); err != nil {
		return nil, fmt.Errorf("list the etcd members: not the member list etcd writes (%v): %.200s", err, res.Stdout)
	}
	if len(list.Members) == 0 {
		return nil, fmt.Errorf("list the etcd members: etcd listed none: %.200s", res.Stdout)
	}
	return list.Members, nil
}

// etcdHealth asks each member's /health through ex and returns the IDs of
// the healthy ones. A member that does not answer is not healthy.
func etcdHealth(ctx context.Context, ex provision.Executor, members []etcdMember) map[etcdID]bool {
	healthy := map[etcdID]bool{}
	for _, m := range members {
		if len(m.ClientURLs) == 0 {
			continue // added but never started
		}
		res, err := ex.Run(ctx, transport.Command{Line: etcdCurl(strings.TrimRight(m.ClientURLs[0], "/") + "/health")})
		if err != nil {
			continue
		}
		var h struct {
			Health string `json:"health"`
		}
		if json.Unmarshal(res.Stdout, &h) == nil && h.Health == "true" {
			healthy[m.ID] = true
		}
	}
	return healthy
}

// memberOf finds h's etcd member: kubeadm names it after the node, and its
// peer URL is the host's address.
func memberOf(members []etcdMember, h *inventory.Host) (etcdMember, bool) {
	for _, m := range members {
		if m.Name == h.Name {
			return m, true
		}
		for _, p := range m.PeerURLs {
			if u, err := url.Parse(p); err == nil && u.Hostname() == h.Address {
				return m, true
			}
		}
	}
	return etcdMember{}, false
}

// removalKeepsQuorum says why removing h's member would leave etcd without
// a quorum, or nil when it would not: the members that stay must have a
// healthy majority among them, counted after the removal (a cluster of n
// members needs n/2+1 healthy ones). Removing a member that is down from
// a healthy cluster is always fine; removing a healthy one while another
// is down may not be.
func removalKeepsQuorum(members []etcdMember, healthy map[etcdID]bool, h *inventory.Host) error {
	gone, isMember := memberOf(members, h)
	var stay, up []string
	var down []string
	for _, m := range members {
		if isMember && m.ID == gone.ID {
			continue
		}
		stay = append(stay, memberName(m))
		if healthy[m.ID] {
			up = append(up, memberName(m))
		} else {
			down = append(down, memberName(m))
		}
	}
	need := len(stay)/2 + 1
	if len(stay) == 0 {
		return fmt.Errorf("%s is etcd's last member: removing it ends the cluster", h.Name)
	}
	if len(up) >= need {
		return nil
	}
	sort.Strings(down)
	return fmt.Errorf("removing %s leaves etcd %d members, of which %d are healthy (%s down), and %d members need %d: etcd would lose its quorum and the cluster would stop",
		h.Name, len(stay), len(up), strings.Join(down, ", "), len(stay), need)
}

func memberName(m etcdMember) string {
	if m.Name != "" {
		return m.Name
	}
	for _, p := range m.PeerURLs {
		if u, err := url.Parse(p); err == nil {
			return u.Hostname()
		}
	}
	return string(m.ID)
}

// removeEtcdMember removes h's member through ex, if it is still listed
// (kubeadm reset removes it itself, but only warns when it cannot).
func removeEtcdMember(ctx context.Context, ex provision.Executor, h *inventory.Host) error {
	members, err := etcdMembers(ctx, ex)
	if err != nil {
		return err
	}
	m, ok := memberOf(members, h)
	if !ok {
		return nil
	}
	body, err := json.Marshal(map[string]string{"ID": string(m.ID)})
	if err != nil {
		return err
	}
	if _, err := ex.Run(ctx, transport.Command{Line: etcdCurl("-f", "-X", "POST", etcdLocal+"/v3/cluster/member/remove", "-d", string(body))}); err != nil {
		return fmt.Errorf("remove %s's etcd member %s: %w", h.Name, m.ID, err)
	}
	return nil
}
