// Package freeport finds loopback ports for processes that will listen on
// them later (an agent started, stopped and started again on the same
// addresses). Ports are chosen below the kernel's ephemeral range (32768
// and up on Linux, 49152 and up elsewhere), where neither a listener on
// port 0 nor the local end of some process's outgoing connection can take
// one in the meantime; only another picker of this range could.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

const (
	low  = 10000
	span = 22000 // up to 31999
)

// Ports returns n distinct ports that were free on 127.0.0.1 just now.
func Ports(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, errors.New("freeport: no free loopback port among 1000 tried")
		}
		p := low + rand.IntN(span)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken, or just taken by another picker
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	return ports, nil
}

// Addrs is Ports as "127.0.0.1:port" addresses.
func Addrs(n int) ([]string, error) {
	ports, err := Ports(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return out, nil
}
