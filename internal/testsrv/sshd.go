package testsrv

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/embedded"
	"golang.org/x/crypto/ssh"
)

// SSHD is an OpenSSH server started for one test, with its own host key and
// a key-only user.
type SSHD struct {
	Addr       string // 127.0.0.1:port
	Host       string
	Port       int
	User       string
	KeyPEM     []byte // the user's private key (OpenSSH PEM)
	KnownHosts string // path of a known_hosts file that pins the host key
	Root       string // a directory the user owns, for inboxes
	cmd        *exec.Cmd
	config     string
	bin        string
}

// StartSSHD starts /usr/sbin/sshd on a free loopback port; it stops when the
// test ends. Under CI=true a missing sshd fails the test.
func StartSSHD(t testing.TB) *SSHD { t.Helper(); return StartSSHDWith(t, "") }

// StartSSHDWith starts sshd with extra sshd_config lines (e.g.
// "MaxStartups 1:100:1").
func StartSSHDWith(t testing.TB, extra string) *SSHD {
	t.Helper()
	bin, err := findBinary("sshd", "/usr/sbin")
	if err != nil {
		Missing(t, "OpenSSH sshd", err)
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		bin = "/usr/sbin/sshd" // sshd must be started by its absolute path
	}
	os.MkdirAll("/run/sshd", 0o755)
	dir := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostPEM, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	os.WriteFile(hostKey, pem.EncodeToMemory(hostPEM), 0o600)
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	userPEM, _ := ssh.MarshalPrivateKey(userPriv, "")
	userPub, _ := ssh.NewPublicKey(userPriv.Public())
	auth := filepath.Join(dir, "authorized_keys")
	os.WriteFile(auth, ssh.MarshalAuthorizedKey(userPub), 0o600)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	s := &SSHD{Host: "127.0.0.1", Port: FreePort(t), User: u.Username, KeyPEM: pem.EncodeToMemory(userPEM), Root: filepath.Join(dir, "home")}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
	os.MkdirAll(s.Root, 0o755)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	os.WriteFile(s.KnownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))), 0o600)
	s.config = filepath.Join(dir, "sshd_config")
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile %s
Subsystem sftp internal-sftp
%s
`, s.Port, hostKey, auth, filepath.Join(dir, "sshd.pid"), extra)
	os.WriteFile(s.config, []byte(cfg), 0o600)
	s.bin = bin
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", s.config)
	if out, err := exec.Command(s.bin, "-t", "-f", s.config).CombinedOutput(); err != nil {
		t.Fatalf("sshd config: %v: %s", err, out)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	if err := embedded.WaitTCP(s.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Stop kills the server and its sessions: open connections drop.
func (s *SSHD) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		killTree(s.cmd.Process.Pid)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Freeze stops the server and its sessions without closing anything: the
// connections stay open and nothing answers, as with a hung server.
func (s *SSHD) Freeze() {
	if s.cmd != nil && s.cmd.Process != nil {
		signalTree(s.cmd.Process.Pid, syscall.SIGSTOP)
	}
}

// Thaw lets a frozen server go on.
func (s *SSHD) Thaw() {
	if s.cmd != nil && s.cmd.Process != nil {
		signalTree(s.cmd.Process.Pid, syscall.SIGCONT)
	}
}
