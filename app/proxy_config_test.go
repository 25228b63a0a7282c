package app

import (
	"strings"
	"testing"

	"github.com/etlhub/etlhub/internal/config"
)

func TestTrustedProxiesAreAddressesOrCIDRs(t *testing.T) {
	t.Setenv("ETLHUB_TOKEN", "local-admin-token-change-me")
	base := `listen: 127.0.0.1:8080
auth:
  tokens:
    - {name: local-admin, token: "${ETLHUB_TOKEN}", role: admin}
`
	var c Config
	if err := config.Parse("ok.yaml", []byte(base+"trusted_proxies: [10.0.0.1, 192.0.2.0/24, \"2001:db8::/32\"]\n"), &c); err != nil {
		t.Fatalf("refused good proxies: %v", err)
	}
	if len(c.TrustedProxies) != 3 {
		t.Fatalf("trusted_proxies = %v", c.TrustedProxies)
	}
	var bad Config
	err := config.Parse("bad.yaml", []byte(base+"trusted_proxies: [10.0.0.1, everyone, 10.0.0.0/33]\n"), &bad)
	if err == nil || !strings.Contains(err.Error(), "trusted_proxies[1]") || !strings.Contains(err.Error(), "trusted_proxies[2]") ||
		!strings.Contains(err.Error(), `"everyone"`) {
		t.Fatalf("bad proxies: %v", err)
	}
}
