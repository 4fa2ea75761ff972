package command

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"gantry/cluster/spend"
	"gantry/config"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	e, err := New(MoveLabel, Label{Feature: "support", Action: config.MovePromote, Version: 3, Reason: "healthy"})
	if err != nil {
		t.Fatal(err)
	}
	e.RequestID, e.Actor, e.Time, e.Skippable = "r1", "user:ops", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), true
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != Format {
		t.Fatalf("format byte %d, want %d", b[0], Format)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != e.Type || got.RequestID != e.RequestID || got.Actor != e.Actor || !got.Time.Equal(e.Time) || !got.Skippable || !bytes.Equal(got.Payload, e.Payload) {
		t.Fatalf("decoded %+v, want %+v", got, e)
	}
	var l Label
	if err := got.DecodePayload(&l); err != nil {
		t.Fatal(err)
	}
	if l != (Label{Feature: "support", Action: config.MovePromote, Version: 3, Reason: "healthy"}) {
		t.Fatalf("payload %+v", l)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantFmt bool
	}{
		{"empty", nil, true},
		{"unknown format byte", []byte{9, '{', '}'}, true},
		{"not json", []byte{Format, 'x'}, false},
		{"too big", append([]byte{Format}, bytes.Repeat([]byte(" "), MaxBytes)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := errors.Is(err, ErrFormat); got != tt.wantFmt {
				t.Fatalf("errors.Is(ErrFormat) = %v, want %v (%v)", got, tt.wantFmt, err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	ok := Envelope{Type: PutModel, Version: 1, RequestID: "r", Time: time.Unix(1, 0), Payload: []byte(`{}`)}
	tests := []struct {
		name string
		mut  func(*Envelope)
		want bool
	}{
		{"valid", func(*Envelope) {}, true},
		{"no type", func(e *Envelope) { e.Type = "" }, false},
		{"version 0", func(e *Envelope) { e.Version = 0 }, false},
		{"no request id", func(e *Envelope) { e.RequestID = "" }, false},
		{"long request id", func(e *Envelope) { e.RequestID = strings.Repeat("r", MaxRequestIDLen+1) }, false},
		{"long actor", func(e *Envelope) { e.Actor = strings.Repeat("a", MaxActorLen+1) }, false},
		{"no time", func(e *Envelope) { e.Time = time.Time{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.mut(&e)
			if got := e.Check() == nil; got != tt.want {
				t.Fatalf("valid = %v, want %v (%v)", got, tt.want, e.Check())
			}
		})
	}
}

func TestNewVersionsPayloadsByWhatTheyCarry(t *testing.T) {
	one := uint64(1)
	from := 1
	tests := []struct {
		name    string
		typ     Type
		payload any
		want    int
	}{
		{"label move", MoveLabel, Label{Feature: "f", Action: config.MovePromote, Version: 2}, 3},
		{"label move from a version", MoveLabel, Label{Feature: "f", Action: config.MovePromote, Version: 2, From: &from}, 3},
		{"config", ApplyConfig, Config{}, 3},
		{"config if unchanged", ApplyConfig, Config{IfIndex: &one}, 3},
		{"spend batch", CommitSpend, Spend{}, 1},
		{"final spend batch", CommitSpend, Spend{Batch: spend.Batch{Final: true}}, 2},
		{"token", PutToken, TokenPayload{}, 1},
	}
	for _, tc := range tests {
		e, err := New(tc.typ, tc.payload)
		if err != nil || e.Version != tc.want {
			t.Errorf("%s: version %d (%v), want %d", tc.name, e.Version, err, tc.want)
		}
	}
}
