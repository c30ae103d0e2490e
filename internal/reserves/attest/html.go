package attest

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math/big"

	"kinko/internal/ledger"
)

//go:embed report.html.tmpl
var reportHTML string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"dec": func(a ledger.Amount, d uint8) string { return a.FormatDecimal(d) },
	"decp": func(a *ledger.Amount, d uint8) string {
		if a == nil {
			return "—"
		}
		return a.FormatDecimal(d)
	},
	"yes": func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	},
}).Parse(reportHTML))

// Bar is one bar of an asset's picture, in SVG user units.
type Bar struct {
	Label, Value     string
	Y, Width, ValueX int
	Class            string
}

// Chart is an asset's picture: liabilities against holdings.
type Chart struct {
	Width, Height int
	Bars          []Bar
}

// Geometry of the pictures: a label column, then bars up to barMax wide.
const (
	chartWidth = 640
	barLeft    = 170
	barMax     = 380
)

// scale returns v's bar width against the larger of the two values, by
// integer arithmetic.
func scale(v, top ledger.Amount) int {
	if top.IsZero() {
		return 0
	}
	q := new(big.Int).Mul(v.Big(), big.NewInt(barMax))
	return int(q.Quo(q, top.Big()).Int64())
}

func chart(a *AssetReport) Chart {
	top := a.Liabilities.Root.Total
	if a.Holdings.Cmp(top) > 0 {
		top = a.Holdings
	}
	held := "held (" + a.HoldingsFrom + ")"
	cls := "held"
	if !a.Covered {
		cls = "short"
	}
	c := Chart{Width: chartWidth, Height: 84, Bars: []Bar{
		{Label: "owed to customers", Value: fmt.Sprintf("%s %s", a.Liabilities.Root.Total.FormatDecimal(a.Decimals), a.Asset), Y: 12, Width: scale(a.Liabilities.Root.Total, top), Class: "owed"},
		{Label: held, Value: fmt.Sprintf("%s %s", a.Holdings.FormatDecimal(a.Decimals), a.Asset), Y: 46, Width: scale(a.Holdings, top), Class: cls},
	}}
	for i := range c.Bars {
		c.Bars[i].ValueX = barLeft + c.Bars[i].Width + 8
	}
	return c
}

// WriteHTML writes the report as one self-contained HTML page: inline
// style, an inline SVG picture per asset, no script, nothing fetched.
func (r *Report) WriteHTML(w io.Writer) error {
	type assetView struct {
		*AssetReport
		Chart Chart
	}
	view := struct {
		*Report
		Views   []assetView
		BarLeft int
	}{Report: r, BarLeft: barLeft}
	for i := range r.Assets {
		view.Views = append(view.Views, assetView{&r.Assets[i], chart(&r.Assets[i])})
	}
	return reportTmpl.Execute(w, view)
}
