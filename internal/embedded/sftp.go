// Package embedded runs, inside the etlhub process, the servers the demo
// needs when no real ones are given: an SFTP server (pkg/sftp over
// x/crypto/ssh), a MongoDB-wire server (FerretDB on SQLite) and Redis
// (redis-server when it is installed, an in-process stand-in otherwise).
package embedded

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTP is an SFTP server on loopback that accepts its users with one key
// and serves the local file system.
type SFTP struct {
	Host       string
	Port       int
	KeyPEM     []byte // the users' private key
	KnownHosts string // a known_hosts file pinning the server's key
	ln         net.Listener
	mu         sync.Mutex
	conns      map[net.Conn]bool
	drops      map[string]int64 // user -> bytes sent after which to drop, once
	wg         sync.WaitGroup
}

// StartSFTP starts the server for users; dir receives its known_hosts file.
func StartSFTP(dir string, users ...string) (*SFTP, error) {
	_, hostKey, _ := ed25519.GenerateKey(rand.Reader)
	userPub, userKey, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		return nil, err
	}
	allowed, err := ssh.NewPublicKey(userPub)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(userKey, "")
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		for _, u := range users {
			if c.User() == u && string(k.Marshal()) == string(allowed.Marshal()) {
				return nil, nil
			}
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SFTP{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, KeyPEM: pem.EncodeToMemory(block),
		KnownHosts: filepath.Join(dir, "known_hosts"), ln: ln, conns: map[net.Conn]bool{}, drops: map[string]int64{}}
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.accept(cfg)
	return s, nil
}

func (s *SFTP) accept(cfg *ssh.ServerConfig) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		go s.serve(c, cfg)
	}
}

func (s *SFTP) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // the handshake
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	defer sc.Close()
	s.mu.Lock()
	after, drop := s.drops[sc.User()]
	s.mu.Unlock()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			for req := range requests {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
				if ok {
					go func() {
						var rw io.ReadWriteCloser = ch
						if drop {
							rw = &dropper{ReadWriteCloser: ch, s: s, user: sc.User(), after: after, conn: c}
						}
						if srv, err := sftp.NewServer(rw); err == nil {
							if err := srv.Serve(); err == io.EOF || err == nil {
								srv.Close()
							}
						}
						ch.Close()
					}()
				}
			}
		}()
	}
}

// DropOnce makes the next session of user that sends more than after bytes
// lose its connection there, as a network failure mid-transfer would.
func (s *SFTP) DropOnce(user string, after int64) {
	s.mu.Lock()
	s.drops[user] = after
	s.mu.Unlock()
}

// dropper cuts its connection once it has sent after bytes.
type dropper struct {
	io.ReadWriteCloser
	s     *SFTP
	user  string
	after int64
	sent  atomic.Int64
	conn  net.Conn
}

func (d *dropper) Write(p []byte) (int, error) {
	if d.sent.Add(int64(len(p))) > d.after {
		d.s.mu.Lock()
		_, armed := d.s.drops[d.user]
		delete(d.s.drops, d.user)
		d.s.mu.Unlock()
		if armed {
			d.conn.Close()
			return 0, io.ErrClosedPipe
		}
	}
	return d.ReadWriteCloser.Write(p)
}

// WaitTCP waits until addr accepts connections, for at most d.
func WaitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %v: %w", addr, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Drop closes every open connection, as a network failure would; the
// server keeps accepting new ones.
func (s *SFTP) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Close stops the server.
func (s *SFTP) Close() {
	s.ln.Close()
	s.Drop()
	s.wg.Wait()
}
