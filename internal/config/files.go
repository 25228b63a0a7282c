package config

import (
	"errors"
	"io/fs"
	"os"
)

// File reports at key a file that is missing, unreadable or not a file; it
// returns its info when it is one.
func (p *Problems) File(key, path string) os.FileInfo {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Add(key, "%s does not exist", path)
	case err != nil:
		p.Add(key, "%s cannot be read: %v", path, errors.Unwrap(err))
	case !fi.Mode().IsRegular():
		p.Add(key, "%s is not a file", path)
	default:
		return fi
	}
	return nil
}

// SSHClient checks an SSH client's credentials in the section at key:
// exactly one of a private key file (key.private_key_file, not readable by
// others) and an inline private key, and a known_hosts file
// (key.known_hosts) that pins the server's host key.
func (p *Problems) SSHClient(key, keyFile, inlineKey, knownHosts string) {
	if (keyFile == "") == (inlineKey == "") {
		p.Add(key, "give exactly one of private_key_file or private_key")
	}
	if keyFile != "" {
		if fi := p.File(key+".private_key_file", keyFile); fi != nil && fi.Mode().Perm()&0o077 != 0 {
			p.Add(key+".private_key_file", "%s is readable by others (mode %04o): chmod 600 %s", keyFile, fi.Mode().Perm(), keyFile)
		}
	}
	if knownHosts == "" {
		p.Add(key+".known_hosts", "is required: the server's host key must be pinned")
	} else {
		p.File(key+".known_hosts", knownHosts)
	}
}
