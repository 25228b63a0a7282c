package notifier

import (
	"errors"
	"strings"
	"testing"
)

// A receiver that echoes part of a routing key or token (cut by itself or
// by us) shows no part of it in the stored error, and the verdict stays.
func TestScrubRemovesPartsOfSecrets(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	hook := "https://hooks.example/services/T0/B0/XXXXSECRETXXXX"
	err := Scrub(&Error{Retry: true, Err: errors.New("invalid routing key " + key[:14] + "... for " + hook[:40])}, key, hook)
	var ne *Error
	if !errors.As(err, &ne) || !ne.Retry {
		t.Fatalf("verdict lost: %#v", err)
	}
	if strings.Contains(err.Error(), key[:8]) || strings.Contains(err.Error(), "services/T0/B0") {
		t.Fatalf("secret part kept: %v", err)
	}
	if !strings.Contains(err.Error(), "https://hooks.example") {
		t.Fatalf("the host was scrubbed too: %v", err)
	}
}
