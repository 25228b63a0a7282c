package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/gin-gonic/gin"
)

// Role orders what a token may do: viewer < operator < admin.
type Role int

const (
	RoleNone Role = iota
	// RoleViewer reads status, runs, alerts and sources.
	RoleViewer
	// RoleOperator also pushes observations, acknowledges alerts and manages silences.
	RoleOperator
	// RoleAdmin may do anything.
	RoleAdmin
)

func parseRole(s string) Role {
	switch s {
	case "viewer":
		return RoleViewer
	case "operator":
		return RoleOperator
	case "admin":
		return RoleAdmin
	}
	return RoleNone
}

func (r Role) String() string {
	return [...]string{"none", "viewer", "operator", "admin"}[r]
}

// AuthConfig lists the bearer tokens the API accepts.
type AuthConfig struct {
	Tokens []TokenConfig `yaml:"tokens"`
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool `yaml:"metrics_public"`
	// PushRole is the least role that may push observations (default viewer;
	// give pushers their own tokens).
	PushRole string `yaml:"push_role"`
	// PingKeys let jobs report to /ping/KEY/... (the ping API), each for
	// one tenant and job.
	PingKeys []PingKeyConfig `yaml:"ping_keys"`
}

// TokenConfig is one bearer token.
type TokenConfig struct {
	Name  string        `yaml:"name"`
	Token config.Secret `yaml:"token"`
	Role  string        `yaml:"role"`
	// Tenants scopes the token; empty means every tenant.
	Tenants []string `yaml:"tenants"`
}

// Validate sets defaults and checks the auth section at key.
func (a *AuthConfig) Validate(p *config.Problems, key string) {
	if a.PushRole == "" {
		a.PushRole = "operator"
	}
	if parseRole(a.PushRole) == RoleNone {
		p.Add(key+".push_role", "%q is not viewer, operator or admin", a.PushRole)
	}
	names := map[string]bool{}
	values := map[string]bool{}
	for i := range a.Tokens {
		t := &a.Tokens[i]
		k := fmt.Sprintf("%s.tokens[%d]", key, i)
		if t.Name == "" {
			p.Add(k+".name", "is required (it names the token in logs)")
		} else if names[t.Name] {
			p.Add(k+".name", "%q is used twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Token.Value()) < 16 {
			p.Add(k+".token", "must be at least 16 characters")
		} else if values[t.Token.Value()] {
			p.Add(k+".token", "is the same as another token's")
		}
		values[t.Token.Value()] = true
		if parseRole(t.Role) == RoleNone {
			p.Add(k+".role", "%q is not viewer, operator or admin", t.Role)
		}
	}
	a.validatePingKeys(p, key)
}

// principal is who a request is.
type principal struct {
	name    string
	role    Role
	tenants []string // nil: all
}

// CanSee reports whether the principal may read or write tenant.
func (p *principal) CanSee(tenant string) bool {
	return p.tenants == nil || slices.Contains(p.tenants, tenant)
}

type tokenEntry struct {
	sum [32]byte
	p   principal
}

type authenticator struct {
	tokens []tokenEntry
}

func newAuthenticator(c AuthConfig) *authenticator {
	a := &authenticator{}
	for _, t := range c.Tokens {
		var tenants []string
		if len(t.Tenants) > 0 {
			tenants = slices.Clone(t.Tenants)
		}
		a.tokens = append(a.tokens, tokenEntry{
			sum: sha256.Sum256([]byte(t.Token.Value())),
			p:   principal{name: t.Name, role: parseRole(t.Role), tenants: tenants},
		})
	}
	return a
}

// lookup compares the presented token with every configured one in constant
// time (hashes make the lengths equal; every entry is compared).
func (a *authenticator) lookup(token string) *principal {
	sum := sha256.Sum256([]byte(token))
	var found *principal
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 {
			found = &a.tokens[i].p
		}
	}
	return found
}

const principalKey = "etlhub.principal"

// require answers 401 without a valid token and 403 below role.
func (a *authenticator) require(role Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			c.Header("WWW-Authenticate", `Bearer realm="etlhub"`)
			abort(c, 401, "unauthorized", "a bearer token is required")
			return
		}
		p := a.lookup(strings.TrimSpace(tok))
		if p == nil {
			c.Header("WWW-Authenticate", `Bearer realm="etlhub", error="invalid_token"`)
			abort(c, 401, "unauthorized", "the bearer token is not valid")
			return
		}
		c.Set(principalKey, p)
		if p.role < role {
			abort(c, 403, "forbidden", fmt.Sprintf("this needs the %s role; token %q has %s", role, p.name, p.role))
			return
		}
		c.Next()
	}
}

func who(c *gin.Context) *principal {
	if v, ok := c.Get(principalKey); ok {
		return v.(*principal)
	}
	return &principal{name: "anonymous"}
}
