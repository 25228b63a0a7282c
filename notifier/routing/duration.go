package routing

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"gopkg.in/yaml.v3"
)

// Duration is a duration as Prometheus and Alertmanager write them: units
// y, w, d, h, m, s and ms, largest first (1d12h, 90s, 4h); "0" is zero.
type Duration time.Duration

var durationSyntax = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$`)

var durationUnits = []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}

// ParseDuration reads a duration such as 30s, 5m, 4h or 1d.
func ParseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	p := durationSyntax.FindStringSubmatch(s)
	if s == "" || p == nil {
		return 0, fmt.Errorf("%q is not a duration (use 30s, 5m, 4h, 1d)", s)
	}
	var d time.Duration
	for i, unit := range durationUnits {
		if p[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(p[i+1], 10, 64)
		if err != nil || n > int64(1<<62)/int64(unit) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		d += time.Duration(n) * unit
	}
	return Duration(d), nil
}

// UnmarshalYAML reads Alertmanager's form, and Go's (1h30m, 1.5h) too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return config.ValueError(n, "a duration is a single value (use 30s, 5m, 4h, 1d)")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		g, gerr := time.ParseDuration(n.Value)
		if gerr != nil {
			return config.ValueError(n, "%v", err)
		}
		v = Duration(g)
	}
	*d = v
	return nil
}

// String writes it back in Alertmanager's form.
func (d Duration) String() string {
	t := time.Duration(d)
	if t == 0 {
		return "0s"
	}
	var out string
	for i, unit := range durationUnits {
		if i == 0 || i == 1 {
			continue // years and weeks read worse than days
		}
		if n := t / unit; n > 0 {
			out += strconv.FormatInt(int64(n), 10) + [...]string{"y", "w", "d", "h", "m", "s", "ms"}[i]
			t -= n * unit
		}
	}
	return out
}
