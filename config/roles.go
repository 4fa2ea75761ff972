package config

// Role is what an admin token may do: viewers read, operators also move
// labels, create releases and manage virtual keys, admins also apply whole
// configurations, remove members and manage tokens.
type Role string

// Roles, from least to most powerful.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Allows reports whether r has at least the power of want.
func (r Role) Allows(want Role) bool {
	return r.rank() >= want.rank() && want.rank() > 0
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r.rank() > 0 }

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}
