//go:build linux

package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// instruction is one line of a Dockerfile stage (continuations joined).
type instruction struct {
	op, args string
}

// runtimeStage is the last stage of the Dockerfile.
func runtimeStage(t *testing.T, path string) []instruction {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []instruction
	var cont string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cont == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		l = cont + l
		cont = ""
		op, args, _ := strings.Cut(l, " ")
		all = append(all, instruction{strings.ToUpper(op), strings.TrimSpace(args)})
	}
	last := 0
	for i, in := range all {
		if in.op == "FROM" {
			last = i
		}
	}
	if all[last].args != "scratch" {
		t.Fatalf("the runtime stage is FROM %s, not scratch", all[last].args)
	}
	return all[last+1:]
}

func jsonArgs(t *testing.T, s string) []string {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not a JSON array (exec form): %v", s, err)
	}
	return v
}

// TestImage builds the container image from deploy/Dockerfile's runtime stage
// without a Docker engine and without pulling anything: buildah from scratch,
// the build stage's outputs taken from this machine (the release's static
// linux/amd64 binary, the CA bundle, an empty data directory), then every
// instruction of the runtime stage as a buildah copy or config, and a commit
// in Docker format (which keeps the HEALTHCHECK).
//
// It then starts the image as a container with an OCI runtime, as `docker
// run` would: buildah run with runc, the image's user, entrypoint and cmd, in
// a network namespace of its own (its fixed port 8080 is its own), ETLHUB_TOKEN
// from the environment. It probes /healthz and /readyz and the API from this
// process (a socket opened inside that namespace), runs the image's HEALTHCHECK
// inside the container, finds the SQLite file in the /data volume owned by the
// image's user, and stops it with SIGTERM as `docker stop` does.
//
// Why buildah run with runc and not podman or crun, on these machines (a VM
// whose cgroups are mounted hybrid, v1 controllers plus an empty v2, and whose
// root lacks CAP_SYS_RESOURCE):
//
//   - podman run (crun): "crun: setrlimit `RLIMIT_NOFILE`: Operation not
//     permitted: OCI permission denied", and with --ulimit nofile set to the
//     host's limit, the same for RLIMIT_NPROC;
//
//   - podman --runtime runc: "error setting rlimits for ready process: error
//     setting rlimit type 7: operation not permitted";
//
//   - buildah run with crun (buildah's default): "cgroups in hybrid mode not
//     supported, drop all controllers from cgroupv2";
//
//   - docker: only the client is installed; no engine runs here.
//
//     go test -run TestImage -v ./deploy/
func TestImage(t *testing.T) {
	for _, tool := range []string{"buildah", "runc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (scripts/test.sh installs buildah and runc)", tool)
			}
			t.Skipf("%s is not installed (scripts/test.sh installs buildah and runc)", tool)
		}
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the image test starts a rootful container in a network namespace: it needs root")
		}
		t.Skip("not root: the image test starts a rootful container in a network namespace")
	}
	bin := staticBinary(t)

	work := t.TempDir()
	store := []string{"--root", filepath.Join(work, "storage"), "--runroot", filepath.Join(work, "run"), "--storage-driver", "vfs"}
	buildah := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("buildah", append(store, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() { exec.Command("buildah", append(store, "rm", "--all")...).Run() })

	start := time.Now()
	// What the build stage makes, from this machine.
	fromBuild := map[string]string{"/out/etlhub": bin, "/etc/ssl/certs/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt",
		"/out/data": filepath.Join(work, "data")}
	os.Mkdir(fromBuild["/out/data"], 0o755)
	if _, err := os.Stat(fromBuild["/etc/ssl/certs/ca-certificates.crt"]); err != nil {
		fromBuild["/etc/ssl/certs/ca-certificates.crt"] = filepath.Join(work, "empty-ca.crt")
		os.WriteFile(fromBuild["/etc/ssl/certs/ca-certificates.crt"], nil, 0o644)
	}
	ctr := buildah("from", "scratch")
	for _, in := range runtimeStage(t, "Dockerfile") {
		switch in.op {
		case "COPY":
			f := strings.Fields(in.args)
			var opts []string
			from := ""
			for len(f) > 2 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				} else {
					opts = append(opts, f[0])
				}
				f = f[1:]
			}
			src := filepath.Join("..", f[0])
			if from != "" {
				if src = fromBuild[f[0]]; src == "" {
					t.Fatalf("COPY --from=%s %s: the test does not know what the build stage puts there", from, f[0])
				}
			}
			buildah(append(append([]string{"copy"}, opts...), ctr, src, f[1])...)
		case "USER":
			buildah("config", "--user", in.args, ctr)
		case "VOLUME":
			buildah("config", "--volume", in.args, ctr)
		case "EXPOSE":
			buildah("config", "--port", in.args, ctr)
		case "ENV":
			buildah("config", "--env", in.args, ctr)
		case "ENTRYPOINT":
			jsonArgs(t, in.args)
			buildah("config", "--entrypoint", in.args, ctr)
		case "CMD":
			buildah("config", "--cmd", strings.Join(jsonArgs(t, in.args), " "), ctr)
		case "HEALTHCHECK":
			args := []string{"config"}
			rest := in.args
			for strings.HasPrefix(rest, "--") {
				var opt string
				opt, rest, _ = strings.Cut(rest, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
				args = append(args, "--healthcheck-"+k, v)
				rest = strings.TrimSpace(rest)
			}
			cmd, ok := strings.CutPrefix(rest, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s: want the exec form", in.args)
			}
			args = append(args, "--healthcheck", "CMD "+strings.Join(jsonArgs(t, cmd), " "), ctr)
			buildah(args...)
		case "ARG", "LABEL":
		default:
			t.Fatalf("Dockerfile runtime stage: %s is not handled here", in.op)
		}
	}
	buildah("commit", "--format", "docker", "--quiet", "--rm", ctr, "localhost/etlhub:test")
	archive := filepath.Join(work, "etlhub-image.tar")
	buildah("push", "--quiet", "localhost/etlhub:test", "docker-archive:"+archive+":localhost/etlhub:test")
	if fi, err := os.Stat(archive); err != nil || fi.Size() < 1<<20 {
		t.Fatalf("image archive: %v", err)
	}
	t.Logf("image built and written as a docker-archive in %s", time.Since(start).Round(time.Millisecond))

	// The image's own config decides how it runs.
	var img struct {
		Docker struct {
			Config struct {
				User         string
				Env          []string
				Entrypoint   []string
				Cmd          []string
				Volumes      map[string]struct{}
				ExposedPorts map[string]struct{}
				Healthcheck  struct{ Test []string }
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(buildah("inspect", "--type", "image", "localhost/etlhub:test")), &img); err != nil {
		t.Fatal(err)
	}
	cfg := img.Docker.Config
	t.Logf("image config: %+v", cfg)
	uid, _, _ := strings.Cut(cfg.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Fatalf("user %q: the image must run as a numeric non-root user", cfg.User)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Fatalf("volumes %v: no /data", cfg.Volumes)
	}
	if len(cfg.Healthcheck.Test) < 2 || cfg.Healthcheck.Test[0] != "CMD" {
		t.Fatalf("healthcheck %v", cfg.Healthcheck.Test)
	}
	if len(cfg.Entrypoint) == 0 {
		t.Fatal("no entrypoint")
	}

	// A network namespace of its own, with loopback up.
	netns := fmt.Sprintf("etlhub-image-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", netns).Run() })
	if out, err := exec.Command("ip", "-n", netns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}
	nsPath := "/run/netns/" + netns

	run := buildah("from", "localhost/etlhub:test")
	runArgs := func(argv ...string) []string {
		return append(append(append([]string{}, store...), "run", "--isolation", "oci", "--runtime", "runc",
			"--network", "ns:"+nsPath, "--env", "ETLHUB_TOKEN="+testToken, run, "--"), argv...)
	}
	c := exec.Command("buildah", runArgs(append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)...)...)
	logs := &syncBuffer{}
	c.Stdout, c.Stderr = logs, logs
	started := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	stopped := false
	defer func() {
		if stopped {
			return
		}
		// Killing buildah leaves runc's container running: kill what is
		// in its namespace first.
		pids, _ := containerPIDs(netns)
		for _, pid := range pids {
			if pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		c.Process.Kill()
		<-done
	}()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialIn(nsPath)}}
	status := func(path, token string) (int, string, error) {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:8080"+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, _, err := status("/healthz", "")
		if err == nil && code == 200 {
			break
		}
		select {
		case <-done:
			t.Fatalf("the container exited: %v\n%s", c.ProcessState, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %d %v after 90s; container logs:\n%s", code, err, logs)
		}
	}
	t.Logf("container answers /healthz %s after start", time.Since(started).Round(time.Millisecond))
	if code, body, err := status("/readyz", ""); err != nil || code != 200 {
		t.Fatalf("/readyz: %d %v %s", code, err, body)
	}
	// The token came from the environment, as the image's config says.
	if code, body, err := status("/api/v1/status", testToken); err != nil || code != 200 {
		t.Fatalf("/api/v1/status with the token: %d %v %s", code, err, body)
	}
	if code, _, err := status("/api/v1/status", ""); err != nil || code != 401 {
		t.Fatalf("/api/v1/status without a token: %d %v, want 401", code, err)
	}

	// The image's HEALTHCHECK, run inside the container as the runtime does.
	hc, err := exec.Command("buildah", runArgs(cfg.Healthcheck.Test[1:]...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("HEALTHCHECK %v: %v %s", cfg.Healthcheck.Test[1:], err, hc)
	}
	t.Logf("HEALTHCHECK %v: %s", cfg.Healthcheck.Test[1:], strings.TrimSpace(string(hc)))

	// Every process in the container's namespace runs as the image's user.
	pids, err := containerPIDs(netns)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 {
		t.Fatal("no process in the container's network namespace")
	}
	var server int
	for _, pid := range pids {
		if pid == os.Getpid() {
			// This test: the thread that dialled may have been its main
			// thread, which Go keeps (wedged, unused) rather than ending.
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if got := procUID(t, pid); got != uid {
			t.Fatalf("process %d (%q) in the container runs as uid %s, want %s", pid, cmdline, got, uid)
		}
		if strings.HasPrefix(string(cmdline), cfg.Entrypoint[0]+"\x00serve") {
			server = pid
		}
	}
	if server == 0 {
		t.Fatalf("no etlhub serve among %v", pids)
	}

	// The store is in the /data volume (a mount of its own, as the runtime
	// makes for an image's VOLUME), the user's, private: seen from inside.
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", server))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ /data `).Match(mounts) {
		t.Fatalf("/data is not a volume mount in the container:\n%s", mounts)
	}
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/root/data/etlhub.db", server))
	if err != nil {
		t.Fatalf("no SQLite file in /data: %v\n%s", err, logs)
	}
	if st := fi.Sys().(*syscall.Stat_t); fmt.Sprint(st.Uid) != uid || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("/data/etlhub.db: uid %d, mode %v; want uid %s, private", st.Uid, fi.Mode(), uid)
	}
	client.CloseIdleConnections()

	// docker stop: SIGTERM to the container's main process; it drains and exits 0.
	syscall.Kill(server, syscall.SIGTERM)
	select {
	case <-done:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM:\n%s", logs)
	}
	if !c.ProcessState.Success() || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("after SIGTERM: %v\n%s", c.ProcessState, logs)
	}
}

// dialIn dials from inside the network namespace at nsPath: the socket is
// made on a thread moved into it (a socket belongs to the namespace it was
// made in). The thread stays locked and ends with its goroutine.
func dialIn(nsPath string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread is dropped, not reused
			f, err := os.Open(nsPath)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			nr, ok := setnsCall[runtime.GOARCH]
			if !ok {
				ch <- result{nil, fmt.Errorf("setns: no system call number for %s here", runtime.GOARCH)}
				return
			}
			if _, _, errno := syscall.RawSyscall(nr, f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
				ch <- result{nil, fmt.Errorf("setns %s: %w", nsPath, errno)}
				return
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			ch <- result{conn, err}
		}()
		r := <-ch
		return r.conn, r.err
	}
}

// setnsCall: the syscall package has no SYS_SETNS.
var setnsCall = map[string]uintptr{"amd64": 308, "arm64": 268}

// containerPIDs: the processes in the network namespace netns.
func containerPIDs(netns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", netns).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// procUID is the real uid of a process.
func procUID(t *testing.T, pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return ""
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
