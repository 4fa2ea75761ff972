package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"gantry/config"
)

// Bounds of admin request bodies other than a whole configuration, which
// config.MaxFileBytes bounds.
const (
	MaxBodyBytes = 1 << 20
	MaxReasonLen = 1024 // a label move's reason, as the cluster log keeps it
	MaxListItems = 1000 // features or models a key may name
)

// DecodeBody decodes an admin request body into v the way every handler
// should: at most limit bytes, exactly one JSON value, no field v does not
// have. Errors name the field or the byte offset at fault.
func DecodeBody(r io.Reader, limit int64, v any) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	data, err := io.ReadAll(lr)
	if err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("request body: more than %d bytes", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("request body: %s: want %s, got a JSON %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("request body: not JSON at byte %d: %v", se.Offset, se)
		case errors.Is(err, io.EOF):
			return errors.New("request body: empty; send a JSON object")
		}
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: data after the JSON value")
	}
	return nil
}

// Check reports what is wrong with a key creation before it is proposed.
func (k KeyCreate) Check() error {
	if !config.ValidName(k.Name) {
		return fmt.Errorf("name: want 1..%d letters, digits and . _ : -, got %.80q", config.MaxNameLen, k.Name)
	}
	if k.Team != "" && !config.ValidName(k.Team) {
		return fmt.Errorf("team: not a valid name: %.80q", k.Team)
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"features", k.Features}, {"models", k.Models}} {
		if len(l.list) > MaxListItems {
			return fmt.Errorf("%s: %d entries, more than %d", l.name, len(l.list), MaxListItems)
		}
		for i, n := range l.list {
			if !config.ValidName(n) {
				return fmt.Errorf("%s[%d]: not a valid name: %.80q", l.name, i, n)
			}
		}
	}
	if b := k.MaxBudgetUSD; math.IsNaN(b) || b < 0 || b > config.MaxBudgetUSD {
		return fmt.Errorf("max_budget_usd: want 0..%g, got %v", config.MaxBudgetUSD, b)
	}
	if r := k.RateLimit; r != nil && (r.RPM < 0 || r.RPM > config.MaxRPM || r.TPM < 0 || r.TPM > config.MaxTPM || r.MaxConcurrent < 0 || r.MaxConcurrent > config.MaxConcurrent) {
		return fmt.Errorf("rate_limit: rpm 0..%d, tpm 0..%d, max_concurrent 0..%d", config.MaxRPM, config.MaxTPM, config.MaxConcurrent)
	}
	return nil
}

// Check reports what is wrong with a token creation before it is proposed.
func (t TokenCreate) Check() error {
	if !config.ValidName(t.Name) {
		return fmt.Errorf("name: want 1..%d letters, digits and . _ : -, got %.80q", config.MaxNameLen, t.Name)
	}
	if config.Role(t.Role).Valid() {
		return nil
	}
	return fmt.Errorf("role: want %s, %s or %s, got %.40q", config.RoleViewer, config.RoleOperator, config.RoleAdmin, t.Role)
}
