package cli

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"kinko/internal/core"
	"kinko/internal/metrics"
)

// accessLog wraps the core's HTTP handler: every request is counted in
// the metrics by route and status with its latency, and logged as one
// access line: method, path (never the query, which may carry a
// one-time code), route, status, duration and who it acted as (who
// names a principal, never a token).
func accessLog(next http.Handler, log *slog.Logger, m *metrics.Metrics, who func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Who is asked before the handler runs: a logout ends the session
		// it names.
		principal := "-"
		if who != nil {
			principal = who(r)
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		route := r.Pattern
		if _, p, ok := strings.Cut(route, " "); ok {
			route = p // the pattern without its method
		}
		if m != nil {
			m.Request(route, r.Method, sw.status, d)
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "access",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", sw.status), slog.Duration("duration", d), slog.String("principal", principal),
			slog.String("remote", clientHost(r)))
	})
}

// clientHost is the request's peer address without its port.
func clientHost(r *http.Request) string {
	h := r.RemoteAddr
	if i := strings.LastIndexByte(h, ':'); i > 0 {
		h = h[:i]
	}
	return h
}

// statusWriter remembers the status a handler wrote; Flush and Unwrap
// keep streams (the journal stream, market streams) working through it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

// WriteHeader remembers the first status written.
func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes b; a write without a status is a 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer when it can.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// auditLog logs every journaled command as one audit line: its entry,
// kind, who it names as acting, and whether it took effect (the refusal
// when not). A command's payload is not logged: the journal holds it.
func auditLog(log *slog.Logger) func(core.AuditRecord) {
	return func(r core.AuditRecord) {
		outcome := "ok"
		lvl := slog.LevelInfo
		if r.Err != nil {
			outcome = "refused: " + r.Err.Error()
			if errors.Is(r.Err, core.ErrTwoPerson) {
				lvl = slog.LevelWarn
			}
		}
		actor := r.Actor
		if actor == "" {
			actor = "-"
		}
		log.LogAttrs(context.Background(), lvl, "audit", slog.Uint64("seq", r.Seq), slog.String("kind", r.Kind.String()),
			slog.String("actor", actor), slog.String("outcome", outcome), slog.Time("at", time.Unix(0, r.Time).UTC()))
	}
}
