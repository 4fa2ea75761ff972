package pii

import (
	"strings"
	"testing"
)

func TestRecognizers(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // rule:matched text, in order; empty means no finding
	}{
		// e-mail
		{"email", "mail bob.smith+tag@example.co.uk today", []string{"email:bob.smith+tag@example.co.uk"}},
		{"email end of sentence", "write to a@b.io.", []string{"email:a@b.io"}},
		{"email in hangul", "이메일은hong@example.com입니다", []string{"email:hong@example.com"}},
		{"email with digits", "id 01012345678@sms.example.kr", []string{"email:01012345678@sms.example.kr"}},
		{"no tld", "bob@localhost", nil},
		{"numeric tld", "bob@example.c0m", nil},
		{"no local part", "@example.com", nil},
		{"empty label", "user@.com", nil},

		// phones
		{"kr mobile", "연락처 010-1234-5678 로", []string{"phone:010-1234-5678"}},
		{"kr mobile adjacent hangul", "연락처010-1234-5678로", []string{"phone:010-1234-5678"}},
		{"kr mobile compact", "call 01012345678", []string{"phone:01012345678"}},
		{"seoul", "02-123-4567", []string{"phone:02-123-4567"}},
		{"area code", "031-1234-5678", []string{"phone:031-1234-5678"}},
		{"full-width", "전화 ０１０－１２３４－５６７８ 입니다", []string{"phone:０１０－１２３４－５６７８"}},
		{"international kr", "+82 10-1234-5678", []string{"phone:+82 10-1234-5678"}},
		{"international us", "ring +1 415 555 2671 now", []string{"phone:+1 415 555 2671"}},
		{"nanp", "415-555-2671", []string{"phone:415-555-2671"}},
		{"kr mobile short last group", "010-1234-567", nil},
		{"eight digits", "1234-5678", nil},
		{"international too short", "+12345", nil},
		{"nanp area starts with 1", "123-456-7890", nil},
		{"digits inside a word", "order A0101234567", nil},

		// cards
		{"visa spaced", "card 4111 1111 1111 1111 exp", []string{"card:4111 1111 1111 1111"}},
		{"visa dashed", "4111-1111-1111-1111", []string{"card:4111-1111-1111-1111"}},
		{"visa compact", "4111111111111111", []string{"card:4111111111111111"}},
		{"amex", "378282246310005", []string{"card:378282246310005"}},
		{"amex grouped", "3782 822463 10005", []string{"card:3782 822463 10005"}},
		{"card then year", "5555 5555 5555 4444 2027", []string{"card:5555 5555 5555 4444"}},
		{"full-width card", "４１１１１１１１１１１１１１１１", []string{"card:４１１１１１１１１１１１１１１１"}},
		{"bad luhn", "4111 1111 1111 1112", nil},
		{"zeros", "0000 0000 0000 0000", nil},
		{"mixed separators", "4111 1111-1111 1111", nil},
		{"twenty digits", "41111111111111111113", nil},

		// IBAN
		{"iban grouped", "GB82 WEST 1234 5698 7654 32", []string{"iban:GB82 WEST 1234 5698 7654 32"}},
		{"iban compact", "to DE89370400440532013000.", []string{"iban:DE89370400440532013000"}},
		{"iban bad checksum", "GB82 WEST 1234 5698 7654 33", nil},
		{"iban short", "DE8937040044053201300", nil},
		{"iban unknown country", "XX89370400440532013000", nil},

		// SSN
		{"ssn", "ssn 123-45-6789", []string{"ssn:123-45-6789"}},
		{"ssn spaced", "123 45 6789", []string{"ssn:123 45 6789"}},
		{"ssn area 000", "000-12-3456", nil},
		{"ssn area 666", "666-12-3456", nil},
		{"ssn area 9xx", "900-12-3456", nil},
		{"ssn group 00", "123-00-6789", nil},
		{"ssn serial 0000", "123-45-0000", nil},

		// RRN
		{"rrn", "주민번호 900101-1234568", []string{"rrn:900101-1234568"}},
		{"rrn 2000s", "051231-4123455", []string{"rrn:051231-4123455"}},
		{"rrn compact", "9001011234568", []string{"rrn:9001011234568"}},
		{"rrn bad check digit", "900101-1234567", nil},
		{"rrn bad date", "850230-1234561", nil},
		{"rrn bad month", "901301-1234568", nil},

		// IP
		{"ipv4", "from 192.168.0.1.", []string{"ip:192.168.0.1"}},
		{"ipv4 port", "10.0.0.7:8080", []string{"ip:10.0.0.7"}},
		{"ipv6", "host 2001:db8::1 up", []string{"ip:2001:db8::1"}},
		{"ipv6 full", "fe80:0000:0000:0000:0202:b3ff:fe1e:8329", []string{"ip:fe80:0000:0000:0000:0202:b3ff:fe1e:8329"}},
		{"ipv6 mapped", "::ffff:192.0.2.1", []string{"ip:::ffff:192.0.2.1"}},
		{"octet too big", "256.1.1.1", nil},
		{"three octets", "1.2.3", nil},
		{"leading zeros", "01.02.03.04", nil},
		{"clock time", "at 12:30:45", nil},
		{"label", "Note: see", nil},

		// secrets
		{"api key", "key=sk-proj-abcdefghijklmnopqrstuvwx", []string{"secret:sk-proj-abcdefghijklmnopqrstuvwx"}},
		{"aws", "AKIAIOSFODNN7EXAMPLE", []string{"secret:AKIAIOSFODNN7EXAMPLE"}},
		{"aws session", "id ASIAY34FZKBOKMUTVV7A,", []string{"secret:ASIAY34FZKBOKMUTVV7A"}},
		{"jwt", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", []string{"secret:eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}},
		{"pem", "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\ny", []string{"secret:-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----"}},
		{"pem truncated", "-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAK\nabc", []string{"secret:-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAK\nabc"}},
		{"short sk", "sk-short", nil},
		{"sk inside a word", "task-abcdefghijklmnopqrstuvwxyz", nil},
		{"aws too short", "AKIAIOSFODNN7EXAMPL", nil},
		{"aws too long", "AKIAIOSFODNN7EXAMPLEX", nil},
		{"jwt without alg", "eyJub3QiOiJqd3QifQ.eyJ4IjoxfQ.sig", nil},
		{"jwt two parts", "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ", nil},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", nil},

		// several in one text
		{"mixed", "Kim 김철수, kim@corp.kr, 010-9876-5432, card 4111111111111111", []string{"email:kim@corp.kr", "phone:010-9876-5432", "card:4111111111111111"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(tt.text, Scan(tt.text))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("Scan(%q)\n got  %q\n want %q", tt.text, got, tt.want)
			}
		})
	}
}

func describe(text string, fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+":"+text[f.Start:f.End])
	}
	return out
}

func TestRedact(t *testing.T) {
	text := "a@b.io wrote to c@d.io and a@b.io; call 010-1234-5678"
	got := Redact(text, Scan(text))
	want := "[EMAIL_1] wrote to [EMAIL_2] and [EMAIL_1]; call [PHONE_1]"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := Redact("plain", nil); got != "plain" {
		t.Fatalf("no findings changed the text: %q", got)
	}
}

func TestFindingsBounded(t *testing.T) {
	text := strings.Repeat("a@b.io ", MaxFindings+100)
	if n := len(Scan(text)); n != MaxFindings {
		t.Fatalf("%d findings, want the cap %d", n, MaxFindings)
	}
}
