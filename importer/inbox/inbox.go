// Package inbox reaches a district's SFTP inbox: the server's host key is
// pinned through a known_hosts file (an unknown or changed key refuses to
// connect), login is by private key, and downloads resume from where an
// interrupted transfer stopped and are checked by size and SHA-256.
package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/etlhub/etlhub/importer/upload"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config is one tenant's SFTP endpoint.
type Config struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	User string `yaml:"user"`
	// PrivateKeyFile or PrivateKey ("${ENV}") is the login key.
	PrivateKeyFile string        `yaml:"private_key_file"`
	PrivateKey     config.Secret `yaml:"private_key"`
	// KnownHosts pins the server's host key.
	KnownHosts string        `yaml:"known_hosts"`
	Dir        string        `yaml:"dir"`
	Timeout    time.Duration `yaml:"timeout"`
}

// Validate sets defaults and checks the section at key.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.Port == 0 {
		c.Port = 22
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Host == "" {
		p.Add(key+".host", "is required")
	}
	if c.User == "" {
		p.Add(key+".user", "is required")
	}
	p.SSHClient(key, c.PrivateKeyFile, c.PrivateKey.Value(), c.KnownHosts)
	if c.Dir == "" {
		c.Dir = "."
	}
}

// Client is a connected inbox.
type Client struct {
	cfg  Config
	ssh  *ssh.Client
	sftp *sftp.Client
	conn *idleConn
}

// idleConn times out a server that stops answering while an operation is
// in flight: each read must bring data within timeout. Between operations
// (a run validating or loading for minutes) the connection may idle.
type idleConn struct {
	net.Conn
	timeout time.Duration
	busy    atomic.Int32
}

func (c *idleConn) Read(b []byte) (int, error) {
	if c.busy.Load() > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return c.Conn.Read(b)
}

// begin arms the timeout for an operation; the returned func disarms it.
func (c *idleConn) begin() func() {
	if c.busy.Add(1) == 1 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return func() {
		if c.busy.Add(-1) == 0 {
			c.Conn.SetReadDeadline(time.Time{})
		}
	}
}

// HostKeyError is a refused host key: unknown, or changed.
type HostKeyError struct {
	Host    string
	Changed bool
	Err     error
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("sftp %s: the host key CHANGED from the one pinned in known_hosts; refusing to connect (a new server, or a man in the middle)", e.Host)
	}
	return fmt.Sprintf("sftp %s: the host key is not in known_hosts; refusing to connect (add it after checking its fingerprint)", e.Host)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// Dial connects and logs in.
func Dial(ctx context.Context, c Config) (*Client, error) {
	keyPEM := []byte(c.PrivateKey.Value())
	if c.PrivateKeyFile != "" {
		b, err := os.ReadFile(c.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("sftp private key: %w", err)
		}
		keyPEM = b
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("sftp private key: %v", err) // the key itself is never printed
	}
	hk, err := knownhosts.New(c.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sftp known_hosts: %w", err)
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	cc := &ssh.ClientConfig{
		User: c.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, Timeout: c.Timeout,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := hk(host, remote, key)
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) {
				return &HostKeyError{Host: addr, Changed: len(ke.Want) > 0, Err: err}
			}
			return err
		},
	}
	d := net.Dialer{Timeout: c.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sftp %s: %w", addr, err)
	}
	timeout := c.Timeout
	if timeout <= 0 { // a Config that skipped Validate
		timeout = 30 * time.Second
	}
	ic := &idleConn{Conn: conn, timeout: timeout}
	handshake := ic.begin()
	sc, chans, reqs, err := ssh.NewClientConn(ic, addr, cc)
	handshake()
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		if errors.As(err, &hke) {
			return nil, hke
		}
		return nil, fmt.Errorf("sftp %s: ssh: %w", addr, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	start := ic.begin()
	sf, err := sftp.NewClient(client, sftp.UseConcurrentReads(true))
	start()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sftp %s: %w", addr, err)
	}
	return &Client{cfg: c, ssh: client, sftp: sf, conn: ic}, nil
}

// Close ends the session.
func (c *Client) Close() error {
	c.sftp.Close()
	return c.ssh.Close()
}

// List is the inbox's files (not directories), for upload detection.
func (c *Client) List() ([]upload.Entry, error) {
	defer c.conn.begin()()
	infos, err := c.sftp.ReadDir(c.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sftp list %s: %w", c.cfg.Dir, err)
	}
	var out []upload.Entry
	for _, fi := range infos {
		if fi.Mode().IsRegular() {
			out = append(out, upload.Entry{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime().UTC()})
		}
	}
	return out, nil
}

// Download copies an inbox file to local, resuming from local's size when an
// earlier transfer stopped, and returns its SHA-256. The size must match the
// remote's at the end.
func (c *Client) Download(name, local string) (string, error) {
	defer c.conn.begin()()
	remote := path.Join(c.cfg.Dir, name)
	rf, err := c.sftp.Open(remote)
	if err != nil {
		return "", fmt.Errorf("sftp open %s: %w", remote, err)
	}
	defer rf.Close()
	st, err := rf.Stat()
	if err != nil {
		return "", err
	}
	lf, err := os.OpenFile(local, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	// Rosters are student data: the importer's alone, whatever the umask
	// or an earlier version left.
	if err := lf.Chmod(0o600); err != nil {
		return "", err
	}
	have, err := lf.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	if have > st.Size() { // the remote file was replaced by a shorter one
		if err := lf.Truncate(0); err != nil {
			return "", err
		}
		have, _ = lf.Seek(0, io.SeekStart)
	}
	if _, err := rf.Seek(have, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.Copy(lf, rf); err != nil {
		return "", fmt.Errorf("sftp download %s at byte %d: %w", remote, have, err)
	}
	size, _ := lf.Seek(0, io.SeekEnd)
	if size != st.Size() {
		return "", fmt.Errorf("sftp download %s: %d bytes, the server has %d", remote, size, st.Size())
	}
	if _, err := lf.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, lf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Put writes data to the inbox (reports/ for the district), atomically by
// renaming a temporary name.
func (c *Client) Put(name string, r io.Reader) error {
	defer c.conn.begin()()
	full := path.Join(c.cfg.Dir, name)
	if err := c.sftp.MkdirAll(path.Dir(full)); err != nil {
		return fmt.Errorf("sftp mkdir %s: %w", path.Dir(full), err)
	}
	tmp := full + ".part"
	f, err := c.sftp.Create(tmp)
	if err != nil {
		return fmt.Errorf("sftp create %s: %w", tmp, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("sftp write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	c.sftp.Remove(full)
	return c.sftp.Rename(tmp, full)
}

// Archive moves processed files into archive/<batch>/ so nothing is
// imported twice. Archiving a batch again is not an error.
func (c *Client) Archive(batch string, names []string) error {
	defer c.conn.begin()()
	dir := path.Join(c.cfg.Dir, "archive", batch)
	if err := c.sftp.MkdirAll(dir); err != nil {
		return fmt.Errorf("sftp mkdir %s: %w", dir, err)
	}
	for _, n := range names {
		src, dst := path.Join(c.cfg.Dir, n), path.Join(dir, n)
		if err := c.sftp.Rename(src, dst); err != nil {
			// Archived already, by an attempt that died before saying so.
			if _, serr := c.sftp.Stat(src); errors.Is(serr, fs.ErrNotExist) {
				if _, derr := c.sftp.Stat(dst); derr == nil {
					continue
				}
			}
			return fmt.Errorf("sftp archive %s: %w", n, err)
		}
	}
	return nil
}
