package demo

import (
	"errors"
	"strings"
	"testing"
)

// TestEthUnavailableWithoutNpm: on a machine without the Safe contracts
// and without npm, the dev's Ethereum side is refused with
// ErrEthUnavailable, saying what to install and which script to run, and
// installs nothing.
func TestEthUnavailableWithoutNpm(t *testing.T) {
	t.Setenv("KINKO_SAFE_CONTRACTS", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	said := false
	_, err := artifacts(func(string, ...any) { said = true })
	if !errors.Is(err, ErrEthUnavailable) {
		t.Fatalf("artifacts = %v; want ErrEthUnavailable", err)
	}
	for _, want := range []string{"npm and node are needed", "scripts/install-safe-contracts.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	if said {
		t.Error("it said it was installing")
	}
}
