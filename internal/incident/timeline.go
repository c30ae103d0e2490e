package incident

import (
	"fmt"
	"io"
	"time"
)

// Event is one line of an incident timeline.
type Event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	What   string    `json:"what"`
	Detail string    `json:"detail"`
}

// WriteMarkdown writes a timeline as a Markdown table.
func WriteMarkdown(w io.Writer, evs []Event) error {
	if _, err := fmt.Fprintln(w, "| entry | time (UTC) | who | what | detail |\n|---|---|---|---|---|"); err != nil {
		return err
	}
	for _, e := range evs {
		if _, err := fmt.Fprintf(w, "| %d | %s | %s | %s | %s |\n", e.Seq, e.Time.UTC().Format("2006-01-02 15:04:05.000"), e.Actor, e.What, e.Detail); err != nil {
			return err
		}
	}
	return nil
}
