package pii

import (
	"strings"
	"testing"
)

// adversarial inputs aim at every recognizer's slow path: runs with no end,
// prefixes that almost match, separators everywhere.
var adversarial = map[string]string{
	"digits":          "1",
	"spaced digits":   "1 ",
	"dotted digits":   "1.",
	"full-width":      "１－",
	"plus":            "+1 ",
	"at signs":        "a@",
	"long local part": "a.",
	"domain labels":   "x@a.",
	"colons":          "1:",
	"hex colons":      "fe80::",
	"pem without end": "-----BEGIN RSA PRIVATE KEY-----\n",
	"pem headers":     "-----BEGIN ",
	"jwt prefixes":    "eyJ.",
	"sk prefixes":     "sk-",
	"aws prefixes":    "AKIA ",
	"iban prefixes":   "GB82 ",
	"dashes":          "-",
	"mixed":           "010-1234-5678 a@b.io 4111 1111 1111 1111 GB82 WEST ",
}

// TestScanIsLinear counts the bytes the scanner examines on 1 MB of each
// adversarial pattern: the count must stay within a fixed multiple of the
// input length, which a quadratic path would exceed by orders of magnitude.
func TestScanIsLinear(t *testing.T) {
	const size = 1 << 20
	const factor = 32
	for name, unit := range adversarial {
		t.Run(name, func(t *testing.T) {
			s := strings.Repeat(unit, size/len(unit))
			sc := scanner{s: s, pemEnd: -2}
			sc.run()
			if sc.work > factor*len(s) {
				t.Fatalf("examined %d bytes for %d of input (%.1f per byte), want at most %d per byte",
					sc.work, len(s), float64(sc.work)/float64(len(s)), factor)
			}
		})
	}
}

func BenchmarkScanAdversarial(b *testing.B) {
	for _, name := range []string{"spaced digits", "colons", "pem without end", "at signs", "mixed"} {
		s := strings.Repeat(adversarial[name], (1<<20)/len(adversarial[name]))
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				Scan(s)
			}
		})
	}
}

func BenchmarkScan4KB(b *testing.B) {
	para := "Customer 4821 asks: my order of two pairs of running shoes arrived with the wrong size. " +
		"I would like to exchange them for size 42 and keep the same colour. The parcel is unopened " +
		"and I still have the receipt from the store in Busan. Can you tell me how long it takes? "
	text := ("Contact me at kim@corp.kr or 010-1234-5678. " + strings.Repeat(para, 20))[:4096]
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Scan(text)
	}
}
