package config

import "testing"

func TestRoles(t *testing.T) {
	tests := []struct {
		have, want Role
		allowed    bool
	}{
		{RoleAdmin, RoleOperator, true},
		{RoleOperator, RoleOperator, true},
		{RoleViewer, RoleOperator, false},
		{RoleOperator, RoleAdmin, false},
		{"root", RoleViewer, false},
		{RoleAdmin, "root", false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.want); got != tt.allowed {
			t.Fatalf("%s.Allows(%s) = %v, want %v", tt.have, tt.want, got, tt.allowed)
		}
	}
}

// A field added to a payload later raises its version only when set, so
// an older agent halts on exactly the commands it would misapply.
