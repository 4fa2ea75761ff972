package provider

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"gantry/config"
)

// ErrForbiddenAddr is what every refusal to reach an address unwraps to.
var ErrForbiddenAddr = errors.New("upstream address refused")

// ForbiddenAddrError says which address a dial or a request was refused
// and why.
type ForbiddenAddrError struct {
	Address string
	Reason  string
}

func (e *ForbiddenAddrError) Error() string {
	return fmt.Sprintf("upstream address %s refused: %s", e.Address, e.Reason)
}

func (e *ForbiddenAddrError) Unwrap() error { return ErrForbiddenAddr }

// DialControl is a net.Dialer.Control that refuses the addresses
// config.ForbiddenAddr names: link-local (cloud metadata and its
// credentials), metadata, unspecified, multicast and broadcast addresses.
// It sees the address a name resolved to, at the moment of the dial, so a
// name that resolves to a public address when checked and to the metadata
// service when dialed (DNS rebinding) is refused all the same. Loopback
// and private networks pass: local model servers live there.
func DialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &ForbiddenAddrError{Address: address, Reason: "not an IP address and port"}
	}
	if why := config.ForbiddenAddr(ap.Addr()); why != "" {
		return &ForbiddenAddrError{Address: address, Reason: why}
	}
	return nil
}

// Dialer is the dialer of upstream calls: DialControl on every connection.
func Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: DialControl}
}

// Transport is the transport upstream calls must use: http.DefaultTransport's
// settings, connections through Dialer, and a proxy from the environment
// only for a host that is not itself refused. Through a proxy the proxy
// resolves names, so a name it resolves to a metadata address is for the
// proxy to refuse.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = Dialer().DialContext
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		if why := config.ForbiddenHost(r.URL.Hostname()); why != "" {
			return nil, &ForbiddenAddrError{Address: r.URL.Host, Reason: why}
		}
		return http.ProxyFromEnvironment(r)
	}
	return t
}
