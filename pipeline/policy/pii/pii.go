// Package pii finds personal data and secrets in text: e-mail addresses,
// phone numbers, payment cards, IBANs, US social security numbers, Korean
// resident registration numbers, IP addresses, API keys, AWS access key ids,
// JWTs and PEM private keys.
//
// Recognizers validate what they find (Luhn, mod-97, check digits, date
// and range rules, net/netip) so near misses are not reported. The scanner
// is one hand-written pass over the bytes: every position is visited a
// bounded number of times, so the time is linear in the input whatever it
// holds. Findings carry byte offsets only, never the matched text.
package pii

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
)

// Rule names, the same names a config.PIIPolicy uses.
const (
	Email  = "email"
	Phone  = "phone"
	Card   = "card"
	IBAN   = "iban"
	SSN    = "ssn"
	RRN    = "rrn"
	IP     = "ip"
	Secret = "secret"
)

// Finding is one recognised item: its rule, a finer kind, and its byte
// offsets [Start, End) in the scanned text.
type Finding struct {
	Rule  string
	Kind  string
	Start int
	End   int
}

// MaxFindings bounds the findings of one scan; further items are not
// reported. A text with more is refused or redacted by what was found.
const MaxFindings = 4096

// Scan returns the findings in s in order of position; they do not overlap.
func Scan(s string) []Finding { return ScanAppend(nil, s) }

// ScanAppend appends the findings in s to dst.
func ScanAppend(dst []Finding, s string) []Finding {
	sc := scanner{s: s, out: dst, base: len(dst), pemEnd: -2}
	sc.run()
	return sc.out
}

func (sc *scanner) run() {
	s := sc.s
	i := 0
	for i < len(s) {
		// Most bytes start nothing; skip them eight at a time.
		for i+8 <= len(s) {
			b := s[i : i+8] // one bounds check for the eight loads
			if class[b[0]]|class[b[1]]|class[b[2]]|class[b[3]]|
				class[b[4]]|class[b[5]]|class[b[6]]|class[b[7]] != cNone {
				break
			}
			i += 8
		}
		for i < len(s) && class[s[i]] == cNone {
			i++
		}
		if i >= len(s) {
			break
		}
		switch class[s[i]] {
		case cNum:
			i = sc.number(i)
		case cAt:
			i = sc.email(i)
		case cColon:
			i = sc.ipv6(i)
		case cUpper:
			switch {
			case s[i] == 'J' && i >= 2 && s[i-2] == 'e' && s[i-1] == 'y':
				// "eyJ" is found at its upper-case letter.
				i = max(i+1, sc.jwt(i-2))
			case i+3 < len(s) && class[s[i+1]] == cUpper:
				i = sc.upper(i)
			default:
				i++
			}
		case cK:
			// "sk-" is found at its rarer middle letter.
			if i > 0 && s[i-1] == 's' && i+1 < len(s) && s[i+1] == '-' {
				i = max(i+1, sc.apiKey(i-1))
			} else {
				i++
			}
		case cDash:
			if i+1 < len(s) && s[i+1] == '-' {
				i = sc.pem(i)
			} else {
				i++
			}
		}
		if len(sc.out)-sc.base >= MaxFindings {
			break
		}
	}
	sc.work += len(s)
}

const (
	cNone = iota
	cNum
	cAt
	cColon
	cUpper
	cK
	cDash
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cNum
	}
	t['+'] = cNum
	t[0xEF] = cNum // lead byte of full-width digits U+FF10..FF19
	t['@'] = cAt
	t[':'] = cColon
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
	}
	t['k'] = cK
	t['-'] = cDash
	return t
}()

type scanner struct {
	s    string
	out  []Finding
	base int
	// pemEnd caches the search for "-----END ": -2 not searched, -1 none
	// after pemFrom, else its position. It keeps many BEGIN lines linear.
	pemEnd, pemFrom int
	// work counts bytes examined, so tests can prove the scan is linear.
	work int
	// tok is reused by every number, so it is not cleared for each.
	tok token
}

func (sc *scanner) emit(rule, kind string, start, end int) {
	// Drop earlier findings this one covers (an e-mail's digits, an
	// address's parts); findings are in order, so only the tail can overlap.
	for len(sc.out) > sc.base && sc.out[len(sc.out)-1].End > start {
		sc.out = sc.out[:len(sc.out)-1]
	}
	sc.out = append(sc.out, Finding{Rule: rule, Kind: kind, Start: start, End: end})
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// wordAt reports whether position i starts a word: its previous byte is not
// an ASCII letter, digit or underscore. Other scripts count as boundaries,
// so "연락처010-1234-5678" still finds the number.
func wordAt(s string, i int) bool {
	return i == 0 || !(isAlnum(s[i-1]) || s[i-1] == '_')
}

// wordEnd reports whether position i ends a word.
func wordEnd(s string, i int) bool {
	return i >= len(s) || !(isAlnum(s[i]) || s[i] == '_')
}

func skipAlnum(s string, i int) int {
	for i < len(s) && (isAlnum(s[i]) || s[i] == '_') {
		i++
	}
	return i
}

// digitAt returns the value and byte width of an ASCII or full-width digit
// at i; width 0 means none.
func digitAt(s string, i int) (byte, int) {
	if i >= len(s) {
		return 0, 0
	}
	if c := s[i]; isDigit(c) {
		return c, 1
	}
	if i+2 < len(s) && s[i] == 0xEF && s[i+1] == 0xBC && s[i+2] >= 0x90 && s[i+2] <= 0x99 {
		return '0' + s[i+2] - 0x90, 3
	}
	return 0, 0
}

// sepAt returns a digit-group separator at i: space, hyphen, dot, or their
// full-width and typographic forms, normalised to ' ', '-' or '.'.
func sepAt(s string, i int) (byte, int) {
	if i >= len(s) {
		return 0, 0
	}
	switch s[i] {
	case ' ', '-', '.':
		return s[i], 1
	case 0xEF: // U+FF0D full-width hyphen-minus, U+FF0E full-width full stop
		if i+2 < len(s) && s[i+1] == 0xBC {
			switch s[i+2] {
			case 0x8D:
				return '-', 3
			case 0x8E:
				return '.', 3
			}
		}
	case 0xE2: // U+2010..U+2013 hyphens and dashes
		if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] >= 0x90 && s[i+2] <= 0x93 {
			return '-', 3
		}
	case 0xE3: // U+3000 ideographic space
		if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x80 {
			return ' ', 3
		}
	}
	return 0, 0
}

const (
	maxGroups = 24
	maxDigits = 64
)

type group struct {
	start, end int // byte offsets
	d0, d1     int // digit index range in token.digits
}

// token is a run of digit groups joined by single separators.
type token struct {
	plus   int // offset of a leading '+', or -1
	groups [maxGroups]group
	seps   [maxGroups]byte // seps[k] joins groups k and k+1
	ng     int
	digits [maxDigits]byte
	nd     int
	badEnd bool // the last group runs into a letter
}

func (t *token) gdigits(k int) int { return t.groups[k].d1 - t.groups[k].d0 }

// number reads a run of digit groups at i and reports what it holds. It
// returns where the scan resumes.
func (sc *scanner) number(i int) int {
	s := sc.s
	if !wordAt(s, i) {
		if s[i] == '+' || s[i] == 0xEF {
			return i + 1
		}
		return skipAlnum(s, i)
	}
	// Fast path: a lone short number ("42", "2027") cannot be anything.
	if s[i] != '+' {
		j := i
		for {
			_, w := digitAt(s, j)
			if w == 0 {
				break
			}
			j += w
		}
		if _, sw := sepAt(s, j); j-i < 7 && (sw == 0 || func() bool { _, w := digitAt(s, j+sw); return w == 0 }()) {
			if j == i {
				return i + 1
			}
			sc.work += j - i
			if !wordEnd(s, j) {
				return skipAlnum(s, j)
			}
			return j
		}
	}
	t := &sc.tok
	t.ng, t.nd, t.plus, t.badEnd = 0, 0, -1, false
	j := i
	if s[i] == '+' {
		if _, w := digitAt(s, i+1); w == 0 {
			return i + 1
		}
		t.plus = i
		j++
	}
	if _, w := digitAt(s, j); w == 0 {
		return i + 1 // 0xEF that is not a full-width digit
	}
	for t.ng < maxGroups {
		g := group{start: j, d0: t.nd}
		for {
			d, w := digitAt(s, j)
			if w == 0 {
				break
			}
			if t.nd < maxDigits {
				t.digits[t.nd] = d
				t.nd++
			} else {
				t.badEnd = true // this group's digits are not all kept
			}
			j += w
		}
		g.end, g.d1 = j, t.nd
		t.groups[t.ng] = g
		t.ng++
		sep, sw := sepAt(s, j)
		if sw == 0 {
			break
		}
		if _, w := digitAt(s, j+sw); w == 0 || t.ng == maxGroups || t.nd >= maxDigits {
			break
		}
		t.seps[t.ng-1] = sep
		j += sw
	}
	end := t.groups[t.ng-1].end
	if !wordEnd(s, end) {
		t.badEnd = true
		end = skipAlnum(s, end)
	}
	sc.work += end - i
	sc.classify(t)
	return end
}

// classify finds the longest valid item at each group, left to right.
func (sc *scanner) classify(t *token) {
	var cand [maxGroups]int
	for a := 0; a < t.ng; {
		n := 0
		nd, minG := 0, maxDigits
		for b := a; b < t.ng; b++ {
			sc.work++
			nd += t.gdigits(b)
			minG = min(minG, t.gdigits(b))
			if nd > 19 {
				break
			}
			if b == t.ng-1 && t.badEnd {
				break
			}
			ipv4 := b-a == 3 && t.seps[a] == '.' && t.seps[a+1] == '.' && t.seps[a+2] == '.'
			intl := a == 0 && t.plus >= 0
			if (nd >= 7 && minG >= 2) || ipv4 || (intl && nd >= 8) {
				cand[n] = b
				n++
			}
			if minG < 2 && b-a >= 3 && !intl {
				break // only an IPv4 address or an international number has 1-digit groups
			}
		}
		matched := false
		for k := n - 1; k >= 0 && !matched; k-- {
			b := cand[k]
			if rule, kind := t.match(a, b); rule != "" {
				start := t.groups[a].start
				if a == 0 && t.plus >= 0 && rule == Phone {
					start = t.plus
				}
				sc.emit(rule, kind, start, t.groups[b].end)
				a = b + 1
				matched = true
			}
		}
		if !matched {
			a++
		}
	}
}

// shape reports whether groups a..b have the given digit counts (0 matches
// any) and all separators are one of seps.
func (t *token) shape(a, b int, seps string, sizes ...int) bool {
	if b-a+1 != len(sizes) {
		return false
	}
	for k, want := range sizes {
		if want != 0 && t.gdigits(a+k) != want {
			return false
		}
	}
	if a == b {
		return true
	}
	first := t.seps[a]
	if strings.IndexByte(seps, first) < 0 {
		return false
	}
	for k := a; k < b; k++ {
		if t.seps[k] != first {
			return false
		}
	}
	return true
}

func (t *token) match(a, b int) (rule, kind string) {
	d := t.digits[t.groups[a].d0:t.groups[b].d1]
	switch {
	case t.shape(a, b, ".", 0, 0, 0, 0):
		if ipv4(t, a) {
			return IP, "ipv4"
		}
		return "", ""
	case (t.shape(a, b, "-", 6, 7) || t.shape(a, b, "", 13)) && validRRN(d):
		return RRN, "kr_rrn"
	case t.shape(a, b, "- ", 3, 2, 4) && validSSN(d):
		return SSN, "us_ssn"
	}
	if a == 0 && t.plus >= 0 {
		if len(d) >= 8 && len(d) <= 15 && d[0] != '0' && t.sepsIn(a, b, " -.") {
			return Phone, "international"
		}
		return "", ""
	}
	if len(d) >= 13 && len(d) <= 19 && d[0] >= '2' && d[0] <= '6' && luhn(d) {
		if a == b || t.cardGroups(a, b) {
			return Card, "payment_card"
		}
	}
	if kind := krPhone(t, a, b, d); kind != "" {
		return Phone, kind
	}
	if t.shape(a, b, "-.", 3, 3, 4) && d[0] >= '2' && d[3] >= '2' {
		return Phone, "nanp"
	}
	return "", ""
}

func (t *token) sepsIn(a, b int, seps string) bool {
	for k := a; k < b; k++ {
		if strings.IndexByte(seps, t.seps[k]) < 0 {
			return false
		}
	}
	return true
}

// cardGroups accepts the printed layouts of cards: one separator kind,
// space or hyphen, and groups of 3 to 6 digits.
func (t *token) cardGroups(a, b int) bool {
	if !t.sepsIn(a, b, " -") {
		return false
	}
	for k := a; k <= b; k++ {
		if n := t.gdigits(k); n < 3 || n > 6 {
			return false
		}
		if k < b && t.seps[k] != t.seps[a] {
			return false
		}
	}
	return true
}

func ipv4(t *token, a int) bool {
	for k := a; k < a+4; k++ {
		g := t.groups[k]
		n := g.d1 - g.d0
		if n < 1 || n > 3 || g.end-g.start != n { // ASCII digits only
			return false
		}
		if n > 1 && t.digits[g.d0] == '0' {
			return false
		}
		v := 0
		for _, c := range t.digits[g.d0:g.d1] {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return false
		}
	}
	return true
}

// luhn checks the Luhn check digit of a payment card number.
func luhn(d []byte) bool {
	sum := 0
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if (len(d)-1-k)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func num(d []byte) int {
	v := 0
	for _, c := range d {
		v = v*10 + int(c-'0')
	}
	return v
}

// validSSN applies the Social Security Administration's rules: area not
// 000, 666 or 9xx, group not 00, serial not 0000.
func validSSN(d []byte) bool {
	area, grp, serial := num(d[0:3]), num(d[3:5]), num(d[5:9])
	return area != 0 && area != 666 && area < 900 && grp != 0 && serial != 0
}

// validRRN checks a Korean resident registration number: a real birth date
// (the century from the gender digit) and the weighted mod-11 check digit.
func validRRN(d []byte) bool {
	yy, mm, dd, g := num(d[0:2]), num(d[2:4]), num(d[4:6]), d[6]-'0'
	var year int
	switch g {
	case 1, 2, 5, 6:
		year = 1900 + yy
	case 3, 4, 7, 8:
		year = 2000 + yy
	case 9, 0:
		year = 1800 + yy
	}
	if mm < 1 || mm > 12 || dd < 1 || dd > daysIn(year, mm) {
		return false
	}
	weights := [12]int{2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5}
	sum := 0
	for k, w := range weights {
		sum += int(d[k]-'0') * w
	}
	return (11-sum%11)%10 == int(d[12]-'0')
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// krPhone recognises Korean numbers: mobile 010-1234-5678 (or unseparated),
// Seoul 02-123-4567, area codes 031..064 and 070.
func krPhone(t *token, a, b int, d []byte) string {
	if d[0] != '0' {
		return ""
	}
	mobile := d[1] == '1' && strings.IndexByte("016789", d[2]) >= 0
	switch {
	case mobile && (t.shape(a, b, "- .", 3, 3, 4) || t.shape(a, b, "- .", 3, 4, 4)):
		return "kr_mobile"
	case mobile && a == b && (len(d) == 10 || len(d) == 11):
		return "kr_mobile"
	case d[1] == '2' && (t.shape(a, b, "- .", 2, 3, 4) || t.shape(a, b, "- .", 2, 4, 4)):
		return "kr_landline"
	case krArea(d) && (t.shape(a, b, "- .", 3, 3, 4) || t.shape(a, b, "- .", 3, 4, 4)):
		return "kr_landline"
	}
	return ""
}

func krArea(d []byte) bool {
	switch num(d[0:3]) {
	case 31, 32, 33, 41, 42, 43, 44, 51, 52, 53, 54, 55, 61, 62, 63, 64, 70:
		return true
	}
	return false
}

var localChars = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isAlnum(byte(c)) || strings.IndexByte("._%+-'", byte(c)) >= 0
	}
	return t
}()

func isLocal(c byte) bool { return localChars[c] }

// email checks for an address around the '@' at i.
func (sc *scanner) email(i int) int {
	s := sc.s
	start := i
	for start > 0 && i-start < 64 && isLocal(s[start-1]) {
		start--
	}
	if start == i || s[start] == '.' || s[i-1] == '.' || (start > 0 && isLocal(s[start-1])) {
		return i + 1
	}
	// Domain: labels of letters, digits and hyphens, two or more, the last
	// alphabetic; a trailing full stop ends the sentence, not the address.
	j, labels, lastStart, end := i+1, 0, 0, -1
	for j < len(s) && j-i <= 253 {
		k := j
		for k < len(s) && (isAlnum(s[k]) || s[k] == '-') && k-j < 63 {
			k++
		}
		if k == j || s[j] == '-' || s[k-1] == '-' {
			break
		}
		labels++
		lastStart = j
		if labels >= 2 && tld(s[lastStart:k]) {
			end = k
		}
		if k+1 < len(s) && s[k] == '.' && isAlnum(s[k+1]) {
			j = k + 1
			continue
		}
		j = k
		break
	}
	sc.work += j - start
	if end < 0 || !wordEnd(s, end) {
		return i + 1
	}
	sc.emit(Email, "email", start, end)
	return end
}

func tld(l string) bool {
	if strings.HasPrefix(l, "xn--") {
		return len(l) > 4
	}
	if len(l) < 2 {
		return false
	}
	for k := 0; k < len(l); k++ {
		if !isAlpha(l[k]) {
			return false
		}
	}
	return true
}

func isIPv6Char(c byte) bool {
	return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' || c == ':' || c == '.'
}

// ipv6 checks the run of hex digits, colons and dots around the ':' at i.
// The whole run is consumed, so each byte is looked at a bounded number of
// times however many colons it has.
func (sc *scanner) ipv6(i int) int {
	s := sc.s
	start, end := i, i+1
	for start > 0 && isIPv6Char(s[start-1]) {
		start--
	}
	colons := 0
	for k := start; k < len(s) && isIPv6Char(s[k]); k++ {
		end = k + 1
		if s[k] == ':' {
			colons++
		}
	}
	sc.work += end - start + i - start
	// Trailing dots and colons belong to the sentence.
	for end > start && (s[end-1] == '.' || s[end-1] == ':' && (end-2 < start || s[end-2] != ':')) {
		end--
	}
	if colons < 2 || end-start > 45 || !wordAt(s, start) || !wordEnd(s, end) {
		return max(i+1, end)
	}
	if a, err := netip.ParseAddr(s[start:end]); err == nil && a.Is6() {
		sc.emit(IP, "ipv6", start, end)
	}
	return max(i+1, end)
}

// upper looks for AWS access key ids and IBANs at an upper-case letter.
func (sc *scanner) upper(i int) int {
	s := sc.s
	if !wordAt(s, i) || i+4 > len(s) {
		return i + 1
	}
	if p := s[i : i+4]; p == "AKIA" || p == "ASIA" {
		j := i + 4
		for j < len(s) && j-i < 20 && (isUpper(s[j]) || isDigit(s[j])) {
			j++
		}
		if j-i == 20 && wordEnd(s, j) {
			sc.emit(Secret, "aws_access_key_id", i, j)
			return j
		}
	}
	if isUpper(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
		if end := iban(s, i, &sc.work); end > 0 {
			sc.emit(IBAN, "iban", i, end)
			return end
		}
	}
	return i + 1
}

// ibanLengths are the IBAN lengths of the registry's countries.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// iban returns the end of a valid IBAN at i, printed compact or in groups
// of four separated by single spaces, or -1.
func iban(s string, i int, work *int) int {
	want, ok := ibanLengths[s[i:i+2]]
	if !ok {
		return -1
	}
	var buf [34]byte
	n, j := 0, i
	defer func() { *work += j - i }()
	for n < want && j < len(s) {
		c := s[j]
		switch {
		case isUpper(c) || isDigit(c):
			buf[n] = c
			n++
			j++
		case c == ' ' && n%4 == 0 && j+1 < len(s) && (isUpper(s[j+1]) || isDigit(s[j+1])):
			j++
		default:
			return -1
		}
	}
	if n != want || !wordEnd(s, j) {
		return -1
	}
	rem := 0
	for k := 0; k < want; k++ {
		c := buf[(k+4)%want]
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	if rem != 1 {
		return -1
	}
	return j
}

func isKeyChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// apiKey finds "sk-" secret keys of at least 20 characters after the prefix.
func (sc *scanner) apiKey(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "sk-") || !wordAt(s, i) {
		return i + 1
	}
	j := i + 3
	for j < len(s) && isKeyChar(s[j]) {
		j++
	}
	sc.work += j - i
	if j-i-3 >= 20 {
		sc.emit(Secret, "api_key", i, j)
	}
	return j
}

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// jwt finds a JSON Web Token: three base64url parts whose header decodes to
// a JSON object naming an algorithm.
func (sc *scanner) jwt(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "eyJ") || !wordAt(s, i) {
		return i + 1
	}
	var ends [3]int
	j := i
	for p := 0; p < 3; p++ {
		k := j
		for k < len(s) && isB64URL(s[k]) {
			k++
		}
		if k == j {
			return max(i+1, j)
		}
		ends[p] = k
		if p < 2 {
			if k >= len(s) || s[k] != '.' {
				return k
			}
			k++
		}
		j = k
	}
	sc.work += j - i
	header := s[i:ends[0]]
	if len(header) > 2048 {
		return j
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(header, "="))
	if err != nil {
		return j
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil || h.Alg == nil || *h.Alg == "" {
		return j
	}
	sc.emit(Secret, "jwt", i, j)
	return j
}

const pemBegin = "-----BEGIN "

// pem finds a PEM private key block, from its BEGIN line to its END line;
// without an END line the block's base64 body is covered.
func (sc *scanner) pem(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], pemBegin) {
		return i + 1
	}
	h := i + len(pemBegin)
	close := strings.Index(s[h:min(len(s), h+64)], "-----")
	if close < 0 || !strings.HasSuffix(s[h:h+close], "PRIVATE KEY") {
		return h
	}
	body := h + close + 5
	end := sc.findPEMEnd(body)
	if end >= 0 {
		tail := end + len("-----END ")
		if c := strings.Index(s[tail:min(len(s), tail+64)], "-----"); c >= 0 {
			sc.emit(Secret, "pem_private_key", i, tail+c+5)
			return tail + c + 5
		}
	}
	// Truncated block: cover the base64 lines that follow.
	j := body
	for j < len(s) && (isAlnum(s[j]) || strings.IndexByte("+/=\r\n \t", s[j]) >= 0) {
		j++
	}
	sc.work += j - i
	sc.emit(Secret, "pem_private_key", i, j)
	return j
}

func (sc *scanner) findPEMEnd(from int) int {
	if sc.pemEnd == -1 && from >= sc.pemFrom || sc.pemEnd >= from {
		return sc.pemEnd
	}
	sc.pemFrom = from
	if k := strings.Index(sc.s[from:], "-----END "); k >= 0 {
		sc.pemEnd = from + k
		sc.work += k
	} else {
		sc.pemEnd = -1
		sc.work += len(sc.s) - from
	}
	return sc.pemEnd
}
