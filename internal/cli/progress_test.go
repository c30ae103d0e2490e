package cli

import (
	"bytes"
	"testing"
)

func TestBarLine(t *testing.T) {
	for _, c := range []struct {
		done, total uint64
		want        string
	}{
		{0, 10, "replaying the journal              [------------------------------]   0%  0/10"},
		{4_500, 10_000, "replaying the journal              [#############-----------------]  45%  4,500/10,000"},
		{12, 10, "replaying the journal              [##############################] 100%  10/10"},
	} {
		if got := barLine("replaying the journal", c.done, c.total); got != c.want {
			t.Errorf("barLine(%d, %d) = %q; want %q", c.done, c.total, got, c.want)
		}
	}
	// Not a terminal: nothing is drawn.
	var buf bytes.Buffer
	newProgress(&buf).set("x", 1, 2)
	if buf.Len() != 0 {
		t.Errorf("drew %q on a buffer", buf.String())
	}
}
