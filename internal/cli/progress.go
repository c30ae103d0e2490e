package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressBar draws how far long work has come (a drill's steps, the
// journal's replay at start, a compensation plan's payments) on a
// terminal: one line, redrawn in place, at most ten times a second. On
// anything else (a file, a pipe, a test) it draws nothing: the commands'
// own lines say what was done.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	last  time.Time
	drawn bool
}

// newProgress is a bar on w if w is a terminal, else nil (a nil bar draws
// nothing).
func newProgress(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progressBar{w: w}
}

// set draws label at done of total.
func (b *progressBar) set(label string, done, total uint64) {
	if b == nil || total == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if label != b.label && b.drawn {
		fmt.Fprintln(b.w)
	}
	now := time.Now()
	if label == b.label && done < total && now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.label, b.last, b.drawn = label, now, true
	fmt.Fprintf(b.w, "\r%s", barLine(label, done, total))
	if done >= total {
		fmt.Fprintln(b.w)
		b.drawn, b.label = false, ""
	}
}

// finish ends a line left open.
func (b *progressBar) finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn, b.label = false, ""
	}
}

// barLine is one drawing: "label [#########-----------]  45%  4,500/10,000".
func barLine(label string, done, total uint64) string {
	const width = 30
	done = min(done, total)
	n := int(done * width / total)
	return fmt.Sprintf("%-34s [%s%s] %3d%%  %s/%s", label, strings.Repeat("#", n), strings.Repeat("-", width-n), done*100/total,
		groupThousands(done), groupThousands(total))
}

// groupThousands writes n with a comma between each three digits.
func groupThousands(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
