// Package deploy holds the image, manifests and units; its tests check them
// offline, as CI runs them.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/importer"
	"github.com/etlhub/etlhub/internal/config"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// strict decodes one manifest into a k8s.io/api type; unknown or duplicate
// fields are errors.
func strict(t *testing.T, doc []byte, out any) {
	t.Helper()
	js, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%T: %v", out, err)
	}
}

type manifests struct {
	configMaps  map[string]*corev1.ConfigMap
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	pvcs        map[string]*corev1.PersistentVolumeClaim
}

// loadManifests reads the manifests of the files glob names (one set, as
// one kubectl apply takes them).
func loadManifests(t *testing.T, glob string) manifests {
	m := manifests{map[string]*corev1.ConfigMap{}, map[string]*appsv1.Deployment{}, map[string]*corev1.Service{},
		map[string]*policyv1.PodDisruptionBudget{}, map[string]*corev1.PersistentVolumeClaim{}}
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var head struct{ APIVersion, Kind string }
			if err := sigsyaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			t.Logf("%s: %s %s", f, head.APIVersion, head.Kind)
			switch head.APIVersion + " " + head.Kind {
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				strict(t, doc, &o)
				m.configMaps[o.Name] = &o
			case "apps/v1 Deployment":
				var o appsv1.Deployment
				strict(t, doc, &o)
				m.deployments[o.Name] = &o
			case "v1 Service":
				var o corev1.Service
				strict(t, doc, &o)
				m.services[o.Name] = &o
			case "policy/v1 PodDisruptionBudget":
				var o policyv1.PodDisruptionBudget
				strict(t, doc, &o)
				m.pdbs[o.Name] = &o
			case "v1 PersistentVolumeClaim":
				var o corev1.PersistentVolumeClaim
				strict(t, doc, &o)
				m.pvcs[o.Name] = &o
			default:
				t.Fatalf("%s document %d: unexpected %s %s", f, i, head.APIVersion, head.Kind)
			}
		}
	}
	return m
}

func matches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t, "kubernetes/*.yaml")
	hubD, imp := m.deployments["etlhub-hub"], m.deployments["etlhub-importer"]
	if hubD == nil || imp == nil {
		t.Fatalf("deployments: %v", m.deployments)
	}
	if imp.Spec.Replicas == nil || *imp.Spec.Replicas < 2 {
		t.Fatal("the importer needs at least two replicas")
	}
	checkDeployments(t, m)
	// The hub: replicas on PostgreSQL (the DSN from the Secret), replaced
	// one at a time, two kept through a drain, each advertising its pod's
	// address to the others.
	if hubD.Spec.Replicas == nil || *hubD.Spec.Replicas < 3 || hubD.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Error("the hub on PostgreSQL runs three replicas or more, rolled one at a time")
	}
	if ru := hubD.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
		t.Error("the hub's rolling update takes down one replica at a time")
	}
	hubCfg := checkHubConfig(t, "ConfigMap etlhub-hub", []byte(m.configMaps["etlhub-hub"].Data["etlhub.yaml"]))
	if hubCfg.Store.Driver != "postgres" || !strings.Contains(m.configMaps["etlhub-hub"].Data["etlhub.yaml"], `dsn: "${ETLHUB_PG_DSN}"`) {
		t.Error("the hub's replicas share one PostgreSQL whose DSN comes from the Secret (${ETLHUB_PG_DSN})")
	}
	hubC := hubD.Spec.Template.Spec.Containers[0]
	if hubC.EnvFrom[0].SecretRef.Name != "etlhub-hub" {
		t.Errorf("the hub's environment (its DSN) comes from Secret etlhub-hub, not %s", hubC.EnvFrom[0].SecretRef.Name)
	}
	podIP := false
	for _, e := range hubC.Env {
		podIP = podIP || e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
	}
	if !podIP || !strings.Contains(m.configMaps["etlhub-hub"].Data["etlhub.yaml"], `advertise: "${POD_IP}:8080"`) {
		t.Error("each hub replica advertises its pod IP (cluster.advertise from POD_IP), where followers reach the leader")
	}
	for name, d := range map[string]*appsv1.Deployment{"hub": hubD, "importer": imp} {
		pdb := m.pdbs[d.Name]
		if pdb == nil || !matches(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || pdb.Spec.MinAvailable.IntValue() < 1 ||
			pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
			t.Errorf("the %s's PodDisruptionBudget must keep one of its replicas and allow a drain", name)
		}
	}
	checkImporterConfig(t, "ConfigMap etlhub-importer", []byte(m.configMaps["etlhub-importer"].Data["importer.yaml"]))
}

// TestKubernetesSingleNode: the SQLite variant is one replica, replaced by
// Recreate (never two on the file), with its database on a volume.
func TestKubernetesSingleNode(t *testing.T) {
	m := loadManifests(t, "kubernetes/single-node/*.yaml")
	checkDeployments(t, m)
	d := m.deployments["etlhub-hub"]
	if d == nil {
		t.Fatalf("deployments: %v", m.deployments)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Error("the hub on SQLite is one hub: replicas 1, Recreate")
	}
	doc := m.configMaps["etlhub-hub"].Data["etlhub.yaml"]
	c := checkHubConfig(t, "single-node ConfigMap etlhub-hub", []byte(doc))
	if c.Store.Driver != "sqlite" {
		t.Errorf("single-node store: %q, want sqlite", c.Store.Driver)
	}
	if !strings.Contains(m.configMaps["etlhub-hub"].Labels["app.kubernetes.io/component"], "hub") {
		t.Error("single-node ConfigMap labels")
	}
	// The database is on the claimed volume, mounted where the config puts it.
	pod := d.Spec.Template.Spec
	onVolume := false
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim == nil || m.pvcs[v.PersistentVolumeClaim.ClaimName] == nil {
			continue
		}
		for _, vm := range pod.Containers[0].VolumeMounts {
			if vm.Name == v.Name && !vm.ReadOnly && strings.HasPrefix(c.Store.Path, vm.MountPath+"/") {
				onVolume = true
			}
		}
	}
	if !onVolume {
		t.Errorf("single-node: the database %s is not on a PersistentVolumeClaim of these manifests", c.Store.Path)
	}
	for name, pvc := range m.pvcs {
		if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) {
			t.Errorf("%s: ReadWriteOnce (one node at a time)", name)
		}
	}
	if len(m.pdbs) != 0 {
		t.Error("single-node: a PodDisruptionBudget on one replica would block every drain")
	}
	data, err := os.ReadFile("kubernetes/single-node/hub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ONE replica, never more") {
		t.Error("single-node/hub.yaml must say it is one replica only")
	}
}

// checkDeployments checks what every Deployment of a set must have: a
// selector of its own pods, a non-root user, probes on named ports,
// secrets from a Secret, an etlhub command and its ConfigMap, and a Service
// per Deployment.
func checkDeployments(t *testing.T, m manifests) {
	t.Helper()
	for name, d := range m.deployments {
		pod := d.Spec.Template
		if !matches(d.Spec.Selector.MatchLabels, pod.Labels) {
			t.Errorf("%s: selector does not match its pods", name)
		}
		sc := pod.Spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: must run as a non-root user", name)
		}
		c := pod.Spec.Containers[0]
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for what, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || !ports[p.HTTPGet.Port.StrVal] {
				t.Errorf("%s: %s probe missing or not on a named port", name, what)
			}
		}
		if len(c.EnvFrom) == 0 || c.EnvFrom[0].SecretRef == nil {
			t.Errorf("%s: secrets come from a Secret reference", name)
		}
		for _, e := range c.Env {
			if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "token") {
				t.Errorf("%s: %s is written in the manifest", name, e.Name)
			}
		}
		// The config the container reads is in a ConfigMap it mounts, and the
		// command is one etlhub has.
		if !slices.Contains([]string{"serve", "importer"}, c.Args[0]) {
			t.Errorf("%s: args %v", name, c.Args)
		}
		found := false
		for _, v := range pod.Spec.Volumes {
			if v.ConfigMap != nil && m.configMaps[v.ConfigMap.Name] != nil {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: mounts no ConfigMap of these manifests", name)
		}
	}
	// The load balancer sends traffic to the hubs whose store answers.
	if hubD := m.deployments["etlhub-hub"]; hubD != nil {
		if p := hubD.Spec.Template.Spec.Containers[0]; p.LivenessProbe.HTTPGet.Path != "/healthz" || p.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("hub probes: %s, %s", p.LivenessProbe.HTTPGet.Path, p.ReadinessProbe.HTTPGet.Path)
		}
	}
	for name, s := range m.services {
		d := m.deployments[name]
		if d == nil || !matches(s.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("service %s selects no deployment", name)
		}
	}
}

// checkHubConfig checks a hub config (secrets are not there) and returns it.
func checkHubConfig(t *testing.T, name string, data []byte) app.Config {
	t.Helper()
	var c app.Config
	if _, err := config.ParseWith(name, data, &c, config.Options{AllowMissingEnv: true}); err != nil {
		t.Errorf("%v", err)
	}
	if c.Store.Driver != "" && c.Listen != "0.0.0.0:8080" {
		t.Errorf("%s: listen %s is not reachable from outside the container", name, c.Listen)
	}
	return c
}

// checkImporterConfig allows only the key files, which are mounted at run time.
func checkImporterConfig(t *testing.T, name string, data []byte) {
	t.Helper()
	var c importer.Config
	_, err := config.ParseWith(name, data, &c, config.Options{AllowMissingEnv: true})
	var ce *config.Error
	if err != nil && !errors.As(err, &ce) {
		t.Fatal(err)
	}
	if ce != nil {
		for _, p := range ce.Problems {
			if !strings.HasSuffix(p.Msg, "does not exist") {
				t.Errorf("%s: %v", name, p)
			}
		}
	}
}

// compose is the part of the Compose specification the stack uses; unknown
// keys are refused.
type compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]struct{}       `yaml:"volumes"`
}

type composeService struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image       string                       `yaml:"image"`
	Command     []string                     `yaml:"command"`
	Environment map[string]string            `yaml:"environment"`
	Volumes     []string                     `yaml:"volumes"`
	Ports       []string                     `yaml:"ports"`
	DependsOn   map[string]map[string]string `yaml:"depends_on"`
	Restart     string                       `yaml:"restart"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
}

func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("compose/docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hub", "importer", "redis", "postgres", "sftp"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	for name, s := range c.Services {
		if (s.Image == "") == (s.Build == nil) && s.Image == "" {
			t.Errorf("%s: neither image nor build", name)
		}
		for dep, cond := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
			if cond["condition"] == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil && !strings.Contains(src, "keys/") {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %s, not declared", name, src)
			}
		}
	}
	if b := c.Services["hub"].Build; b == nil || b.Dockerfile != "deploy/Dockerfile" {
		t.Error("the hub is built from deploy/Dockerfile")
	}
	if _, err := os.Stat(filepath.Join("compose", c.Services["hub"].Build.Context, c.Services["hub"].Build.Dockerfile)); err != nil {
		t.Errorf("build context: %v", err)
	}
	hubYAML, _ := os.ReadFile("compose/hub.yaml")
	checkHubConfig(t, "compose/hub.yaml", hubYAML)
	impYAML, _ := os.ReadFile("compose/importer.yaml")
	checkImporterConfig(t, "compose/importer.yaml", impYAML)
}

// The systemd unit: systemd-analyze verify where systemd is installed (it
// checks the unit against the real parser); always the keys we rely on.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("systemd/etlhub.service")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string][]string{}
	var cur string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			cur = l[1 : len(l)-1]
			sections[cur] = map[string][]string{}
		case cur != "" && strings.Contains(l, "="):
			k, v, _ := strings.Cut(l, "=")
			sections[cur][k] = append(sections[cur][k], v)
		default:
			t.Fatalf("line %d: %q", n, l)
		}
	}
	svc := sections["Service"]
	if svc == nil || sections["Unit"] == nil || sections["Install"] == nil {
		t.Fatalf("sections: %v", sections)
	}
	for k, want := range map[string]string{"DynamicUser": "yes", "NoNewPrivileges": "yes", "StateDirectory": "etlhub", "KillSignal": "SIGTERM", "UMask": "0077"} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}
	exec0 := strings.Fields(svc["ExecStart"][0])
	if exec0[0] != "/usr/local/bin/etlhub" || exec0[1] != "serve" {
		t.Errorf("ExecStart=%v", exec0)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (scripts/test.sh installs systemd)")
		}
		t.Log("systemd-analyze not installed: parsed only")
		return
	}
	// verify needs the binaries the unit names: a stand-in etlhub in a root.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/local/bin/etlhub"), []byte("#!/bin/sh\n"), 0o755)
	os.MkdirAll(filepath.Join(root, "bin"), 0o755) // ExecReload's kill
	os.WriteFile(filepath.Join(root, "bin/kill"), []byte("#!/bin/sh\n"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755)
	// The targets it orders against (network-online, multi-user) from this machine.
	os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755)
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying the system's units: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(root, "etc/systemd/system/etlhub.service"), data, 0o644)
	out, err := exec.Command(analyze, "verify", "--root="+root, "--man=no", "/etc/systemd/system/etlhub.service").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		// Messages about the machine's other units are not ours.
		if strings.Contains(l, "etlhub.service") {
			t.Errorf("systemd-analyze: %s", l)
		}
	}
	if err != nil && strings.Contains(string(out), "etlhub.service") {
		t.Errorf("systemd-analyze verify: %v", err)
	}
	t.Logf("systemd-analyze verify: %v %s", err, out)
}
