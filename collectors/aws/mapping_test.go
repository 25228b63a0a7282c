package aws

import (
	"strings"
	"testing"

	"github.com/etlhub/etlhub/internal/config"
)

func mapping(t *testing.T, c Capabilities, rules ...Rule) Mapping {
	t.Helper()
	m := Mapping(rules)
	var p config.Problems
	m.Validate(&p, "map", c)
	if p.Len() > 0 {
		t.Fatal(p.Err("test"))
	}
	return m
}

func TestMappingRules(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rules       []Rule
		item        Item
		tenant, job string
		why         []string // in the rejection
	}{
		{name: "one expression gives both",
			rules: []Rule{{Match: `^(?P<tenant>[a-z-]+)--(?P<job>[a-z-]+)$`}},
			item:  Item{Names: map[string]string{"execution": "miami-dade--roster-sync"}}, tenant: "miami-dade", job: "roster-sync"},
		{name: "over another name",
			rules: []Rule{{Match: `^(?P<job>.+)$`, Over: "state_machine"}, {Tenant: "dade"}},
			item:  Item{Names: map[string]string{"execution": "x", "state_machine": "sis-sync"}}, tenant: "dade", job: "sis-sync"},
		{name: "input path, nested and indexed",
			rules: []Rule{{TenantFromInput: "district.slug", JobFromInput: "steps[1].job"}},
			item:  Item{Input: `{"district":{"slug":"broward"},"steps":[{"job":"a"},{"job":"roster"}]}`}, tenant: "broward", job: "roster"},
		{name: "a number in the input",
			rules: []Rule{{TenantFromInput: "district_id", Job: "sync"}},
			item:  Item{Input: `{"district_id": 1234}`}, tenant: "1234", job: "sync"},
		{name: "tags",
			rules: []Rule{{TenantFromTag: "tenant", JobFromTag: "job"}},
			item:  Item{Tags: map[string]string{"tenant": "lee", "job": "attendance"}}, tenant: "lee", job: "attendance"},
		{name: "the first rule that gives a field wins",
			rules: []Rule{{TenantFromTag: "tenant"}, {Tenant: "fallback", Job: "j"}},
			item:  Item{Tags: map[string]string{"tenant": "lee"}}, tenant: "lee", job: "j"},
		{name: "falls through to a constant",
			rules: []Rule{{Match: `^(?P<tenant>[a-z]+)-`}, {Tenant: "shared", Job: "j"}},
			item:  Item{Names: map[string]string{"execution": "NOPE"}}, tenant: "shared", job: "j"},
		{name: "nothing matches",
			rules: []Rule{{Match: `^(?P<tenant>[a-z]+)-(?P<job>.+)$`}, {TenantFromInput: "district"}, {JobFromTag: "job"}},
			item:  Item{Names: map[string]string{"execution": "UPPER"}, Input: `{"other": 1}`},
			why:   []string{"no rule gives its tenant or job", `rule 1: execution "UPPER" does not match`, "rule 2: the input has nothing at district", "rule 3: no tag job"}},
		{name: "input not JSON",
			rules: []Rule{{TenantFromInput: "district", Job: "j"}},
			item:  Item{Input: `not json`}, why: []string{"no rule gives its tenant (rule 1: the input is not JSON)"}},
		{name: "input value not a string",
			rules: []Rule{{TenantFromInput: "district", Job: "j"}},
			item:  Item{Input: `{"district": {"a": 1}}`}, why: []string{"the input's district is not a string"}},
		{name: "empty tag",
			rules: []Rule{{TenantFromTag: "tenant", Job: "j"}},
			item:  Item{Tags: map[string]string{"tenant": " "}}, why: []string{"no tag tenant"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mapping(t, StepFunctionsNames, tc.rules...)
			tenant, job, err := m.Map(tc.item)
			if len(tc.why) > 0 {
				if err == nil {
					t.Fatalf("mapped to %s/%s", tenant, job)
				}
				for _, w := range tc.why {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil || tenant != tc.tenant || job != tc.job {
				t.Fatalf("%s/%s, %v; want %s/%s", tenant, job, err, tc.tenant, tc.job)
			}
		})
	}
}

func TestMappingConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     Capabilities
		rules []Rule
		want  string
	}{
		{"empty", StepFunctionsNames, nil, "map: is required"},
		{"bad expression", StepFunctionsNames, []Rule{{Match: `(?P<tenant>[a-`, Job: "j"}}, "map[0].match: is not a regular expression"},
		{"no named group", StepFunctionsNames, []Rule{{Match: `^(.+)$`, Job: "j"}}, "has no named group tenant or job"},
		{"unknown name", StepFunctionsNames, []Rule{{Match: `(?P<tenant>.+)`, Over: "queue", Job: "j"}}, `map[0].over: "queue" is not one of execution, state_machine`},
		{"no job", StepFunctionsNames, []Rule{{TenantFromInput: "a"}}, "map: no rule gives a job"},
		{"no tenant", BatchNames, []Rule{{Job: "j"}}, "map: no rule gives a tenant"},
		{"a rule giving nothing", BatchNames, []Rule{{Tenant: "t", Job: "j"}, {}}, "map[1]: gives nothing"},
		{"over without match", BatchNames, []Rule{{Tenant: "t", Job: "j", Over: "job"}}, "map[0].over: is only for match"},
		{"no input", Capabilities{Names: []string{"queue"}}, []Rule{{TenantFromInput: "a", Job: "j"}}, "have no input"},
		{"no tags", Capabilities{Names: []string{"queue"}}, []Rule{{TenantFromTag: "a", Job: "j"}}, "have no tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p config.Problems
			Mapping(tc.rules).Validate(&p, "map", tc.c)
			if err := p.Err("x"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v; want %q", err, tc.want)
			}
		})
	}
}
