package pii

import (
	"testing"
	"unicode/utf8"
)

var knownRules = map[string]bool{Email: true, Phone: true, Card: true, IBAN: true, SSN: true, RRN: true, IP: true, Secret: true}

func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"kim@corp.kr 010-1234-5678 4111 1111 1111 1111",
		"GB82 WEST 1234 5698 7654 32 900101-1234568 123-45-6789",
		"2001:db8::1 192.168.0.1 AKIAIOSFODNN7EXAMPLE",
		"-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
		"０１０－１２３４－５６７８",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := scanner{s: s, pemEnd: -2}
		sc.run()
		if sc.work > 32*len(s)+64 {
			t.Fatalf("examined %d bytes of %d", sc.work, len(s))
		}
		last := 0
		for _, fd := range sc.out {
			if !knownRules[fd.Rule] || fd.Kind == "" {
				t.Fatalf("bad finding %+v", fd)
			}
			if fd.Start < last || fd.End <= fd.Start || fd.End > len(s) {
				t.Fatalf("finding %+v out of order or bounds (previous end %d, len %d)", fd, last, len(s))
			}
			last = fd.End
			if utf8.ValidString(s) && !utf8.ValidString(s[fd.Start:fd.End]) {
				t.Fatalf("finding %+v splits a character", fd)
			}
		}
		red := Redact(s, sc.out)
		if len(sc.out) == 0 && red != s {
			t.Fatalf("redaction without findings changed the text")
		}
	})
}
