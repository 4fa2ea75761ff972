package freeport

import (
	"net"
	"testing"
)

// TestPortsAreFreeDistinctAndBelowTheEphemeralRange: every port can be
// listened on, none repeats, and none is where port 0 or outgoing
// connections take theirs.
func TestPortsAreFreeDistinctAndBelowTheEphemeralRange(t *testing.T) {
	ports, err := Ports(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p < low || p >= 32768 {
			t.Fatalf("port %d: repeated or outside [%d, 32768)", p, low)
		}
		seen[p] = true
	}
	addrs, err := Addrs(3)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		l.Close()
	}
}
