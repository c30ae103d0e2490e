package incident

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Report is an incident's report: the record, its timeline from the
// opening on, and the compensation plans that answer it.
type Report struct {
	Incident Incident
	Asset    string
	Events   []Event
	Plans    []PlanLine
	// Zone is the time zone the customer notice states times in (Asia/Tokyo
	// for a Japanese exchange); the report itself is in UTC.
	Zone *time.Location
	// Halted are the services of the asset halted when the report was
	// made ("withdraw", "deposit", ...): what the notice says of service,
	// from the state, not guessed from the timeline.
	Halted []string
	// Covers are the house's own coins moved to customer wallets after
	// the incident opened (cover ceremonies): the loss made up in kind,
	// before any plan pays the rest in another asset.
	Covers []CoverLine
}

// CoverLine is a cover ceremony as the report states it.
type CoverLine struct {
	ID     string
	Amount string // formatted in the asset
	TxID   string
	State  string // prepared, confirmed
}

// PlanLine is a compensation plan as the report states it.
type PlanLine struct {
	ID        string
	Rule      string
	Rate      string // "88.549 JPY per XEM", or the suspension rule
	Rounding  string
	At        time.Time
	Customers int
	Total     string // formatted in the pay asset
	Largest   string
	Status    string
	Approver  string
	Requester string
}

// WriteMarkdown writes the report as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	in := r.Incident
	var b strings.Builder
	fmt.Fprintf(&b, "# Incident %s\n\n", in.ID)
	fmt.Fprintf(&b, "- asset: %s\n- detected by: %s\n- opened: %s (journal entry %d)\n- reason: %s\n", in.Asset, in.Detector, utc(in.Opened), in.Seq, in.Reason)
	if in.Closed != 0 {
		fmt.Fprintf(&b, "- closed: %s by %s\n", utc(in.Closed), in.ClosedBy)
	} else {
		b.WriteString("- status: open\n")
	}
	if len(in.TxIDs) > 0 {
		b.WriteString("\n## Offending transactions\n\n")
		for _, tx := range in.TxIDs {
			fmt.Fprintf(&b, "- `%s`\n", tx)
		}
	}
	if len(r.Covers) > 0 {
		b.WriteString("\n## Covered in kind\n\n| ceremony | from the house's own coins | transaction | state |\n|---|---|---|---|\n")
		for _, c := range r.Covers {
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", c.ID, c.Amount, c.TxID, c.State)
		}
	}
	if len(r.Plans) > 0 {
		b.WriteString("\n## Compensation\n\n| plan | rule | rate | rounding | holdings at | customers | total | largest | status | written by | approved by |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range r.Plans {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", p.ID, p.Rule, p.Rate, p.Rounding, p.At.UTC().Format(time.RFC3339), p.Customers, p.Total, p.Largest, p.Status, p.Requester, p.Approver)
		}
	}
	if len(in.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range in.Notes {
			fmt.Fprintf(&b, "- %s, %s: %s\n", utc(n.Time), n.Actor, n.Text)
		}
	}
	b.WriteString("\n## Timeline\n\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return WriteMarkdown(w, r.Events)
}

// WriteHTML writes the report as a self-contained HTML page with the
// timeline drawn as an SVG picture.
func (r *Report) WriteHTML(w io.Writer) error {
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident %s</title>\n", html.EscapeString(r.Incident.ID))
	b.WriteString("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#111}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .5em;font-size:.9em;text-align:left}pre{white-space:pre-wrap}</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>Incident %s</h1>\n", html.EscapeString(r.Incident.ID))
	b.WriteString(r.SVG())
	b.WriteString("\n<table>\n<tr><th>entry</th><th>time (UTC)</th><th>who</th><th>what</th><th>detail</th></tr>\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", e.Seq, e.Time.UTC().Format("2006-01-02 15:04:05.000"),
			html.EscapeString(e.Actor), html.EscapeString(e.What), html.EscapeString(e.Detail))
	}
	b.WriteString("</table>\n<h2>The record</h2>\n<pre>")
	b.WriteString(html.EscapeString(md.String()))
	b.WriteString("</pre>\n</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SVG draws the timeline: one mark an event on a time axis, detections
// and halts red, lifts green, the rest grey, each labelled.
func (r *Report) SVG() string {
	const width, left, right, rowH, top = 1000, 20, 980, 22, 40
	evs := r.Events
	var b strings.Builder
	h := top + rowH*len(evs) + 20
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, width, h, width, h)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, top-10, right, top-10)
	if len(evs) == 0 {
		b.WriteString(`<text x="20" y="20">no event</text></svg>`)
		return b.String()
	}
	t0, t1 := evs[0].Time, evs[len(evs)-1].Time
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, left, top-16, t0.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s (+%s)</text>`, right, top-16, t1.UTC().Format(time.RFC3339), span.Round(time.Millisecond))
	for i, e := range evs {
		x := left + int(float64(right-left)*float64(e.Time.Sub(t0))/float64(span))
		y := top + rowH*i
		color := "#777"
		switch {
		case strings.HasPrefix(e.What, "halt") || strings.HasPrefix(e.What, "incident ") && !strings.Contains(e.What, "closed"):
			color = "#c0392b"
		case strings.HasPrefix(e.What, "lift") || strings.Contains(e.What, "executes"):
			color = "#1e8449"
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-dasharray="2,2"/>`, x, top-10, x, y, color)
		fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="4" fill="%s"/>`, x, y, color)
		anchor, dx := "start", 8
		if x > width/2 {
			anchor, dx = "end", -8
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="%s">%s · %s</text>`, x+dx, y+4, anchor, html.EscapeString(e.Actor), html.EscapeString(e.What))
	}
	b.WriteString("</svg>")
	return b.String()
}

var noticeTmpl = template.Must(template.New("notice").Parse(`To our customers: unauthorized outflow of {{.Asset}} and how we will compensate you

On {{.Detected}}, our monitoring detected an unauthorized transfer of {{.Asset}} from one of our online wallets.{{if .Halted}} Our systems stopped {{.Asset}} withdrawals by themselves at {{.Halted}}, without waiting for a person.{{end}} The incident is recorded as {{.ID}}.
{{if .TxIDs}}
The transactions concerned are:
{{range .TxIDs}}  {{.}}
{{end}}{{end}}
Customers' assets are kept apart from the company's; most are held in offline wallets that were not affected.
{{- range .Covers}}

The company made up {{.Amount}} of the loss from its own coins, held for this purpose, into customers' wallets ({{.State}}, transaction {{.TxID}}): those balances are whole in {{$.Asset}} itself.{{end}}
{{- range .Plans}}

Compensation ({{.ID}}): {{.Customers}} customers who held {{$.Asset}} at {{.AtLocal}} will receive {{.Rate}}, {{.Rounding}}, a total of {{.Total}}. Payment status: {{.Status}}.{{end}}
{{- if and (not .Plans) (not .Covers)}}

We will announce how we compensate affected customers once the plan is approved.{{end}}

Service status: {{.Status}}

We apologise for the concern this has caused. Questions: support, quoting reference {{.ID}}.
`))

// WriteNotice writes a draft customer notice with the facts filled in, for
// the operators to review before it is sent.
func (r *Report) WriteNotice(w io.Writer) error {
	zone := r.Zone
	if zone == nil {
		zone = time.UTC
	}
	type plan struct {
		PlanLine
		AtLocal string
	}
	d := struct {
		ID, Asset, Detected, Halted, Status string
		TxIDs                               []string
		Plans                               []plan
		Covers                              []CoverLine
	}{ID: r.Incident.ID, Asset: r.Asset, TxIDs: r.Incident.TxIDs, Covers: r.Covers}
	detected := time.Unix(0, r.Incident.Opened)
	for _, e := range r.Events {
		// The halt a detector made by itself, not one a person made.
		if strings.HasPrefix(e.What, "halt") && (e.Actor == "watcher" || e.Actor == "reconciliation") {
			d.Halted = e.Time.In(zone).Format("2006-01-02 15:04:05.000 MST")
			if e.Time.Before(detected) {
				detected = e.Time
			}
			break
		}
	}
	d.Detected = detected.In(zone).Format("2006-01-02 15:04:05 MST")
	switch {
	case len(r.Halted) == 0:
		d.Status = "all " + r.Asset + " services have resumed; see our status page."
	case slices.Contains(r.Halted, "withdraw"):
		d.Status = r.Asset + " withdrawals remain suspended while we investigate (suspended now: " + strings.Join(r.Halted, ", ") + ")."
	default:
		d.Status = r.Asset + " withdrawals have resumed; still suspended: " + strings.Join(r.Halted, ", ") + "; see our status page."
	}
	for _, p := range r.Plans {
		d.Plans = append(d.Plans, plan{PlanLine: p, AtLocal: p.At.In(zone).Format("2006-01-02 15:04:05 MST")})
	}
	return noticeTmpl.Execute(w, d)
}

func utc(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000 UTC") }
