package aws

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/jsonpath"
)

// Rule maps an AWS item (an execution, a Batch job, a queue, a function) to
// the tenant and job it runs for. Rules are tried in order; each fills what
// is still missing, so one rule may give the tenant and a later one the job.
//
//	map:
//	  - match: '^(?P<tenant>[a-z0-9-]+)--(?P<job>[a-z0-9-]+)$'
//	    over: execution             # which name the expression reads
//	  - tenant_from_input: district.slug  # a dotted path into the execution's input
//	  - job_from_tag: etlhub-job    # a tag of the state machine, job or queue
//	  - job: sis-sync               # a constant
type Rule struct {
	// Match is a regular expression with named groups tenant and/or job.
	Match string `yaml:"match"`
	// Over names what Match reads: one of the names the kind has (Names).
	Over string `yaml:"over"`
	// TenantFromInput and JobFromInput are dotted paths into the item's
	// input: a Step Functions execution's input JSON, a Batch job's
	// parameters.
	TenantFromInput string `yaml:"tenant_from_input"`
	JobFromInput    string `yaml:"job_from_input"`
	// TenantFromTag and JobFromTag are tag keys.
	TenantFromTag string `yaml:"tenant_from_tag"`
	JobFromTag    string `yaml:"job_from_tag"`
	// Tenant and Job are constants.
	Tenant string `yaml:"tenant"`
	Job    string `yaml:"job"`

	re *regexp.Regexp
}

// Capabilities says what a kind's items carry for the rules to read.
type Capabilities struct {
	Names []string // the names Over may name, the first the default
	Input bool     // items have an input (execution input, job parameters)
	Tags  bool     // items have tags
}

// Mapping is a validated list of rules.
type Mapping []Rule

// Validate compiles the rules at key (e.g. sources[2].stepfunctions.map).
func (m Mapping) Validate(p *config.Problems, key string, c Capabilities) {
	if len(m) == 0 {
		p.Add(key, "is required: at least one rule giving the tenant and the job")
		return
	}
	tenant, job := false, false
	for i := range m {
		r := &m[i]
		k := fmt.Sprintf("%s[%d]", key, i)
		if r.Match == "" && r.Over != "" {
			p.Add(k+".over", "is only for match")
		}
		if r.Match != "" {
			re, err := regexp.Compile(r.Match)
			if err != nil {
				p.Add(k+".match", "is not a regular expression: %v", err)
			} else {
				r.re = re
				groups := map[string]bool{}
				for _, n := range re.SubexpNames() {
					groups[n] = true
				}
				if !groups["tenant"] && !groups["job"] {
					p.Add(k+".match", "has no named group tenant or job (write (?P<tenant>...) or (?P<job>...))")
				}
				tenant, job = tenant || groups["tenant"], job || groups["job"]
			}
			if r.Over == "" {
				r.Over = c.Names[0]
			} else if !contains(c.Names, r.Over) {
				p.Add(k+".over", "%q is not one of %s", r.Over, strings.Join(c.Names, ", "))
			}
		}
		if (r.TenantFromInput != "" || r.JobFromInput != "") && !c.Input {
			p.Add(k, "this kind's items have no input to read (tenant_from_input, job_from_input)")
		}
		if (r.TenantFromTag != "" || r.JobFromTag != "") && !c.Tags {
			p.Add(k, "this kind's items have no tags to read (tenant_from_tag, job_from_tag)")
		}
		for name, v := range map[string]string{"tenant": r.Tenant, "job": r.Job} {
			if len(v) > 128 || (v != "" && strings.TrimSpace(v) == "") {
				p.Add(k+"."+name, "must be a name of at most 128 bytes")
			}
		}
		tenant = tenant || r.TenantFromInput != "" || r.TenantFromTag != "" || r.Tenant != ""
		job = job || r.JobFromInput != "" || r.JobFromTag != "" || r.Job != ""
		if r.Match == "" && r.TenantFromInput == "" && r.JobFromInput == "" && r.TenantFromTag == "" &&
			r.JobFromTag == "" && r.Tenant == "" && r.Job == "" {
			p.Add(k, "gives nothing: set match, tenant_from_input, job_from_input, tenant_from_tag, job_from_tag, tenant or job")
		}
	}
	if !tenant {
		p.Add(key, "no rule gives a tenant")
	}
	if !job {
		p.Add(key, "no rule gives a job")
	}
}

// UsesTags reports whether any rule reads tags (a kind fetches them only then).
func (m Mapping) UsesTags() bool {
	for _, r := range m {
		if r.TenantFromTag != "" || r.JobFromTag != "" {
			return true
		}
	}
	return false
}

// Item is what the rules read of one AWS item.
type Item struct {
	Names map[string]string // by the kind's name keys (Capabilities.Names)
	Input string            // JSON; "" when the item has none
	Tags  map[string]string
}

// Map applies the rules to it: the tenant and job, or an error naming why not.
func (m Mapping) Map(it Item) (tenant, job string, err error) {
	var why []string
	var input any
	inputRead := false
	fromInput := func(path string) (string, string) {
		if !inputRead {
			inputRead = true
			if it.Input != "" {
				dec := json.NewDecoder(strings.NewReader(it.Input))
				dec.UseNumber()
				if dec.Decode(&input) != nil {
					input = nil
					return "", "the input is not JSON"
				}
			}
		}
		if input == nil {
			return "", "there is no input"
		}
		v, ok := jsonpath.Lookup(input, path)
		if !ok {
			return "", fmt.Sprintf("the input has nothing at %s", path)
		}
		switch x := v.(type) {
		case string:
			if strings.TrimSpace(x) == "" {
				return "", fmt.Sprintf("the input's %s is empty", path)
			}
			return x, ""
		case json.Number:
			return x.String(), ""
		}
		return "", fmt.Sprintf("the input's %s is not a string", path)
	}
	fromTag := func(key string) (string, string) {
		if v := it.Tags[key]; strings.TrimSpace(v) != "" {
			return v, ""
		}
		return "", fmt.Sprintf("no tag %s", key)
	}
	for i, r := range m {
		if tenant != "" && job != "" {
			break
		}
		re := r.re
		if re == nil && r.Match != "" {
			re, _ = regexp.Compile(r.Match) // compiled by Validate; nil when invalid
		}
		if re != nil {
			name := it.Names[r.Over]
			sub := re.FindStringSubmatch(name)
			if sub == nil {
				why = append(why, fmt.Sprintf("rule %d: %s %q does not match", i+1, r.Over, name))
			}
			for gi, g := range re.SubexpNames() {
				if sub == nil || sub[gi] == "" {
					continue
				}
				if g == "tenant" && tenant == "" {
					tenant = sub[gi]
				}
				if g == "job" && job == "" {
					job = sub[gi]
				}
			}
		}
		try := func(dst *string, path string, get func(string) (string, string)) {
			if *dst != "" || path == "" {
				return
			}
			v, reason := get(path)
			if reason != "" {
				why = append(why, fmt.Sprintf("rule %d: %s", i+1, reason))
			}
			*dst = v
		}
		try(&tenant, r.TenantFromInput, fromInput)
		try(&job, r.JobFromInput, fromInput)
		try(&tenant, r.TenantFromTag, fromTag)
		try(&job, r.JobFromTag, fromTag)
		if tenant == "" {
			tenant = r.Tenant
		}
		if job == "" {
			job = r.Job
		}
	}
	var missing []string
	if tenant == "" {
		missing = append(missing, "tenant")
	}
	if job == "" {
		missing = append(missing, "job")
	}
	if len(missing) > 0 {
		msg := "no rule gives its " + strings.Join(missing, " or ")
		if len(why) > 0 {
			msg += " (" + strings.Join(why, "; ") + ")"
		}
		return "", "", fmt.Errorf("%s", msg)
	}
	return tenant, job, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
