package inject

// The vocabulary the heuristics look for. Words are matched lower-cased
// through a small open-addressing table keyed by the hash the scanner
// computes while it reads each word, so most words cost one probe.

const maxWord = 16

// Word classes.
const (
	kOverride = 1 << iota // verbs that discard instructions
	kTarget               // what gets discarded or revealed
	kQual                 // words that point at the existing instructions
	kReveal               // verbs that ask to disclose
)

// Word ids for sequences.
const (
	idNone = iota
	idYou
	idAre
	idNow
	idFrom
	idOn
	idAct
	idRoleplay
	idAs
	idPretend
	idTo
	idBe
	idNew
	idDeveloper
	idMode
	idJailbreak
	idDo
	idAnything
	idEverything
	idSystem
	idPrompt
	idMessage
	idInstructions
	idModeWord // dan, god, unrestricted: words that name a mode
)

type vocab struct {
	word  string
	kind  int
	id    int
	lenth int
}

// slots hold 1 + the index of a word in vocabs, 0 when empty: a 1 KB
// table that stays in the L1 cache, unlike the entries themselves.
var (
	slots [1024]uint8
	// lasts has, per first letter and length, a bit per last letter of the
	// vocabulary words (letters are indexed by their low five bits, the
	// same in either case): most words of a text are ruled out by one load
	// without hashing.
	lasts  [32][32]uint32
	vocabs []vocab
)

func init() {
	add := func(kind, id int, words ...string) {
		for _, w := range words {
			slot := hash(w) & uint32(len(slots)-1)
			for slots[slot] != 0 && vocabs[slots[slot]-1].word != w {
				slot = (slot + 1) & uint32(len(slots)-1)
			}
			if slots[slot] == 0 {
				if len(vocabs) == 255 {
					panic("inject: vocabulary larger than its table")
				}
				vocabs = append(vocabs, vocab{word: w, lenth: len(w)})
				slots[slot] = uint8(len(vocabs))
			}
			e := &vocabs[slots[slot]-1]
			lasts[w[0]&31][len(w)] |= 1 << (w[len(w)-1] & 31)
			e.kind |= kind
			if id != idNone {
				e.id = id
			}
		}
	}
	add(kOverride, idNone, "ignore", "disregard", "forget", "override", "bypass", "skip", "neglect", "abandon", "drop", "overlook", "overwrite", "discard")
	add(kTarget, idNone, "instruction", "rules", "rule", "prompts", "directions", "directives", "guidelines",
		"guidance", "constraints", "restrictions", "programming", "orders", "context", "commands", "policies")
	add(kTarget, idInstructions, "instructions")
	add(kTarget, idPrompt, "prompt")
	add(kTarget, idMessage, "message")
	add(kQual, idNone, "previous", "prior", "above", "earlier", "preceding", "original", "initial",
		"your", "all", "any", "existing", "old", "foregoing", "hidden", "secret", "these", "those")
	add(kQual, idSystem, "system")
	add(kReveal, idNone, "reveal", "show", "print", "repeat", "output", "display", "tell", "leak", "dump",
		"disclose", "give", "write", "spell", "share", "recite", "what")
	add(0, idYou, "you")
	add(0, idAre, "are")
	add(0, idNow, "now")
	add(0, idFrom, "from")
	add(0, idOn, "on")
	add(0, idAct, "act")
	add(0, idRoleplay, "roleplay")
	add(0, idAs, "as")
	add(0, idPretend, "pretend")
	add(0, idTo, "to")
	add(0, idBe, "be")
	add(0, idNew, "new", "updated", "real", "actual", "true")
	add(0, idDeveloper, "developer")
	add(0, idMode, "mode")
	add(0, idJailbreak, "jailbreak", "jailbroken", "jailbreaking")
	add(0, idDo, "do")
	add(0, idAnything, "anything")
	add(0, idEverything, "everything")
	add(0, idModeWord, "dan", "god", "unrestricted", "unfiltered", "admin", "sudo")
}

// hash mixes a word's length and its first, second and last letters, in
// lower case: enough to spread the vocabulary, and O(1) per word.
func hash(w string) uint32 {
	h := uint32(len(w))<<24 | uint32(w[0]|0x20)<<16 | uint32(w[1]|0x20)<<8 | uint32(w[len(w)-1]|0x20)
	return (h * 2654435761) >> 22 // Fibonacci hashing onto the 1024 slots
}

// candidate reports whether w, a word of 2..maxWord ASCII letters, may be
// in the vocabulary.
func candidate(w string) bool {
	return lasts[w[0]&31][len(w)&31]&(1<<(w[len(w)-1]&31)) != 0
}

// find looks up a candidate word, in any case.
func find(w string) *vocab {
	slot := hash(w) & uint32(len(slots)-1)
	for slots[slot] != 0 {
		e := &vocabs[slots[slot]-1]
		if e.lenth == len(w) && equalFold(e.word, w) {
			return e
		}
		slot = (slot + 1) & uint32(len(slots)-1)
	}
	return nil
}

// equalFold compares a lower-case word with ASCII letters of any case.
func equalFold(lower, w string) bool {
	for k := 0; k < len(w); k++ {
		if w[k]|0x20 != lower[k] {
			return false
		}
	}
	return true
}

// onWord applies the sequence rules when a vocabulary word arrives. recent
// holds the m vocabulary words before it in a ring.
func (s *scorer) onWord(w word, recent *[window]word, m int) {
	n := w.num
	// at returns the word k words before w when it is in the vocabulary.
	at := func(k int) *word {
		if k > n || k > window {
			return nil
		}
		// Vocabulary words are numbered in order, so word n-k, if any, is
		// among the last k of the ring.
		for d := 1; d <= k && d <= m; d++ {
			r := &recent[(m-d)&(window-1)]
			if r.num <= n-k {
				if r.num == n-k {
					return r
				}
				return nil
			}
		}
		return nil
	}
	prev := func(k int) *vocab {
		if r := at(k); r != nil {
			return r.v
		}
		return nil
	}
	is := func(k, id int) bool { v := prev(k); return v != nil && v.id == id }
	start := func(k int) int { return at(k).start }

	if w.v.kind&kTarget != 0 {
		// "ignore all previous instructions", "disregard the prior rules"
		qual := false
		for k := 1; k <= 5 && k <= n; k++ {
			v := prev(k)
			if v == nil {
				continue
			}
			if v.kind&kOverride != 0 && qual {
				s.add(Override, start(k), w.end)
				break
			}
			if v.kind&kQual != 0 {
				qual = true
			}
		}
		// "show me your system prompt", "repeat the initial instructions"
		if v := prev(1); v != nil && v.kind&kQual != 0 {
			for k := 2; k <= 6 && k <= n; k++ {
				if v := prev(k); v != nil && v.kind&kReveal != 0 {
					s.add(PromptLeak, start(k), w.end)
					break
				}
			}
		}
		if w.v.id == idInstructions && is(1, idNew) {
			s.add(NewInstructions, start(1), w.end)
		}
	}
	switch w.v.id {
	case idEverything:
		for k := 1; k <= 2; k++ {
			if v := prev(k); v != nil && v.kind&kOverride != 0 {
				s.add(Override, start(k), w.end)
			}
		}
	case idNow:
		if is(1, idAre) && is(2, idYou) || is(1, idAnything) && is(2, idDo) {
			s.add(RoleSwitch, start(2), w.end)
		}
	case idOn:
		if is(1, idNow) && is(2, idFrom) {
			s.add(RoleSwitch, start(2), w.end)
		}
	case idAs:
		if is(1, idAct) || is(1, idRoleplay) {
			s.add(RoleSwitch, start(1), w.end)
		}
	case idBe:
		if is(1, idTo) && is(2, idPretend) {
			s.add(RoleSwitch, start(2), w.end)
		}
	case idAre:
		if is(1, idYou) && is(2, idPretend) {
			s.add(RoleSwitch, start(2), w.end)
		}
	case idMode:
		if is(1, idDeveloper) || is(1, idModeWord) || is(1, idJailbreak) {
			s.add(RoleSwitch, start(1), w.end)
		}
	case idJailbreak:
		s.add(RoleSwitch, w.start, w.end)
	}
}
