package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gantry/config"
)

func TestDialControl(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{"169.254.169.254:80", true},
		{"169.254.170.2:80", true}, // ECS task credentials
		{"[fe80::1]:80", true},
		{"[fd00:ec2::254]:80", true},
		{"[::ffff:169.254.169.254]:80", true},
		{"[64:ff9b::a9fe:a9fe]:80", true},
		{"[2002:a9fe:a9fe::1]:80", true},
		{"100.100.100.200:80", true},
		{"0.0.0.0:80", true},
		{"[::]:80", true},
		{"224.0.0.1:80", true},
		{"255.255.255.255:80", true},
		{"127.0.0.1:11434", false},
		{"[::1]:8000", false},
		{"10.0.0.5:8000", false},
		{"192.168.1.20:8000", false},
		{"172.16.0.9:443", false},
		{"[fd12:3456::1]:8000", false},
		{"104.18.6.192:443", false},
	} {
		err := DialControl("tcp", tc.addr, nil)
		if got := errors.Is(err, ErrForbiddenAddr); got != tc.refused {
			t.Fatalf("%s: refused %v (%v), want %v", tc.addr, got, err, tc.refused)
		}
	}
}

// fakeDNS answers every A question with ip, as a name that rebinds to the
// metadata service would once its short-lived answer expires.
func fakeDNS(t *testing.T, ip net.IP) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5 // the root label, type and class
			if end > n {
				continue
			}
			qtype := binary.BigEndian.Uint16(q[end-4:])
			resp := append([]byte{}, q[:end]...)
			resp[2], resp[3] = 0x81, 0x80 // a response, recursion available
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			if qtype == 1 { // A
				binary.BigEndian.PutUint16(resp[6:], 1)
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4)
				resp = append(resp, ip.To4()...)
			} else {
				binary.BigEndian.PutUint16(resp[6:], 0)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// TestTransportRefusesResolvedMetadataAddress: a base URL with an innocent
// name whose DNS answer is the metadata address is refused when dialed,
// after resolution, and the request never leaves; the same name answering
// with a loopback address reaches the local server.
func TestTransportRefusesResolvedMetadataAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := func(ip string) *http.Client {
		tr := Transport()
		d := Dialer()
		d.Resolver = fakeDNS(t, net.ParseIP(ip))
		tr.DialContext = d.DialContext
		tr.Proxy = nil
		return &http.Client{Transport: tr}
	}
	_, err := client("169.254.169.254").Get("http://models.example.test:" + port + "/v1")
	var fe *ForbiddenAddrError
	if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "link-local") {
		t.Fatalf("a name resolving to the metadata address: %v, want it refused at dial", err)
	}
	resp, err := client("127.0.0.1").Get("http://models.example.test:" + port + "/v1")
	if err != nil {
		t.Fatalf("a name resolving to loopback: %v", err)
	}
	resp.Body.Close()
}

func TestTransportRefusesMetadataHosts(t *testing.T) {
	c := &http.Client{Transport: Transport()}
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://0xa9fea9fe/",
	} {
		_, err := c.Get(u)
		if !errors.Is(err, ErrForbiddenAddr) {
			t.Fatalf("%s: %v, want it refused", u, err)
		}
	}
}

func TestKeysRefuseTheAgentsOwnVariables(t *testing.T) {
	env := map[string]string{"GANTRY_CLUSTER_SECRET": "s3cret", "AWS_SECRET_ACCESS_KEY": "aws", "OPENAI_API_KEY": "sk-1", "OPENAI_KEY": "sk-2", "GANTRY_OPENAI_API_KEY": "sk-3"}
	getenv := func(k string) string { return env[k] }
	def := Keys{Getenv: getenv}
	custom, err := NewKeys(getenv, `^(OPENAI_KEY|.*_API_KEY)$`)
	if err != nil {
		t.Fatal(err)
	}
	anything, err := NewKeys(getenv, `.*`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		keys Keys
		name string
		ok   bool
	}{
		{def, "OPENAI_API_KEY", true},
		{def, "OPENAI_KEY", false},
		{def, "GANTRY_CLUSTER_SECRET", false},
		{def, "GANTRY_OPENAI_API_KEY", false},
		{custom, "OPENAI_KEY", true},
		{anything, "GANTRY_CLUSTER_SECRET", false},
		{anything, "AWS_SECRET_ACCESS_KEY", false},
		{anything, "aws_secret_access_key", false},
	} {
		v, err := tc.keys.Key(tc.name)
		if (err == nil) != tc.ok {
			t.Fatalf("%s under %v: %q %v, want allowed %v", tc.name, tc.keys.Pattern, v, err, tc.ok)
		}
		if v := env[tc.name]; err != nil && v != "" && strings.Contains(err.Error(), v) {
			t.Fatalf("the error shows the variable's value: %v", err)
		}
	}
	if _, err := NewKeys(getenv, `(`); err == nil {
		t.Fatal("an invalid pattern was accepted")
	}
	p := config.Provider{Name: "o", Kind: config.KindOpenAI, APIKeyEnv: "GANTRY_CLUSTER_SECRET"}
	if _, err := New(p, getenv, nil); err == nil || !strings.Contains(err.Error(), "GANTRY_") {
		t.Fatalf("a provider naming the cluster secret: %v", err)
	}
	p = config.Provider{Name: "o", Kind: config.KindOpenAI, BaseURL: "http://169.254.169.254/latest/meta-data/"}
	if _, err := New(p, getenv, nil); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Fatalf("a provider at the metadata address: %v", err)
	}
}
