package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/people"
)

//go:embed web
var webFS embed.FS

const (
	cookieName = "kinko_session"
	// preCookie carries the double-submit CSRF token of the login form,
	// before there is a session.
	preCookie = "kinko_csrf"
)

// pages are the console's templates (t) and the customer app's (app),
// each set with its own layout.
type pages struct{ t, app map[string]*template.Template }

func loadPages() (*pages, error) {
	p := &pages{t: map[string]*template.Template{}, app: map[string]*template.Template{}}
	for _, set := range []struct {
		to     map[string]*template.Template
		layout string
		names  []string
	}{
		{p.t, "layout", []string{"login", "home", "customers", "operators", "approvals", "assets", "journal", "incidents", "status", "reserves", "withdrawals", "controls", "incident", "markets", "market", "dealer", "enrol", "yen"}},
		{p.app, "app_layout", []string{"login", "yen"}},
	} {
		for _, name := range set.names {
			file := name
			if set.layout != "layout" {
				file = "app_" + name
			}
			t, err := template.ParseFS(webFS, "web/"+set.layout+".html", "web/"+file+".html")
			if err != nil {
				return nil, fmt.Errorf("api: template %s: %w", file, err)
			}
			set.to[name] = t
		}
	}
	return p, nil
}

// view is what every page template gets.
type view struct {
	Title, Nav string
	Operator   string
	// Customer is the customer app's signed-in customer (their e-mail).
	Customer      string
	Roles         []people.Role
	CSRF          string
	Error, Notice string
	Data          any
	// Reader is an operator who may only read (the auditor's role
	// alone): the pages leave out every form that writes.
	Reader bool
	// May tells which write forms the operator's roles may use; the
	// pages leave the others out.
	May mayDo
}

// mayDo is what an operator's roles may do from the console, as the core
// and the API check it: a page shows a write form only to who may use it.
type mayDo struct {
	// Write is every role but the auditor alone: halts, lifts,
	// resumption plans, closing incidents, deciding requests.
	Write bool
	// Admin: operators, their credentials and roles.
	Admin bool
	// KYC: a customer's KYC state (operator or admin).
	KYC bool
	// Markets: index price, dealer reference, cancel-all (operator or
	// admin).
	Markets bool
	// Propose: propose an asset and ask for its listing (operator, admin
	// or ciso).
	Propose bool
	// Review: an asset's risk review (ciso).
	Review bool
}

// mayOf is what an operator with roles may do from the console.
func mayOf(roles []people.Role) mayDo {
	has := func(rs ...people.Role) bool {
		for _, r := range rs {
			if slices.Contains(roles, r) {
				return true
			}
		}
		return false
	}
	return mayDo{
		Write:   mayAskClose(roles),
		Admin:   has(people.RoleAdmin),
		KYC:     has(people.RoleOperator, people.RoleAdmin),
		Markets: has(people.RoleOperator, people.RoleAdmin),
		Propose: has(people.RoleOperator, people.RoleAdmin, people.RoleCISO),
		Review:  has(people.RoleCISO),
	}
}

func (s *Server) render(w http.ResponseWriter, name string, status int, v view) {
	s.renderFrom(w, s.pages.t, name, status, v)
}

// renderFrom writes the page name of a set of templates.
func (s *Server) renderFrom(w http.ResponseWriter, set map[string]*template.Template, name string, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := set[name].ExecuteTemplate(w, "layout", v); err != nil {
		s.log.Error("render", "page", name, "err", err)
	}
}

// csrfFor binds a CSRF token to a session: an HMAC of the session token's
// hash with the host's key, so it cannot be guessed or moved.
func (s *Server) csrfFor(token [32]byte) string {
	m := hmac.New(sha256.New, s.csrf)
	m.Write(token[:])
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return s.cookieAt(name, value, "/", maxAge)
}

// cookieAt is a session's cookie for the pages under path: HttpOnly,
// Secure unless the server runs without TLS, SameSite=Strict.
func (s *Server) cookieAt(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: !s.cfg.InsecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
}

// consoleUser returns the operator of a console request, or redirects to
// the login page.
func (s *Server) consoleUser(w http.ResponseWriter, r *http.Request) (view, Principal, bool) {
	p, err := s.principal(r)
	if err != nil || p.Session.Kind != people.SessionOperator {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return view{}, p, false
	}
	var o people.Operator
	s.core.Read(func(st *core.State) { o, _ = st.People.Operator(p.Session.Operator) })
	v := view{Operator: o.Name, Roles: o.Roles, CSRF: s.csrfFor(p.Token), Error: r.URL.Query().Get("err"), Notice: r.URL.Query().Get("ok"), Reader: !mayAskClose(o.Roles), May: mayOf(o.Roles)}
	return v, p, true
}

var errFormCSRF = errors.New("the form's CSRF token is missing or wrong: reload the page")

// consolePost checks a console form post: a logged-in operator and the
// form's CSRF token. The form is parsed within MaxBody.
func (s *Server) consolePost(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	return s.formPost(w, r, people.SessionOperator, s.principal)
}

// formPost checks a form post of the console or of the customer app: a
// session of kind (found by find, each its own cookie), from this site's
// own page, with the session's CSRF token in the form. It answers a
// refusal itself. The form is parsed within MaxBody.
func (s *Server) formPost(w http.ResponseWriter, r *http.Request, kind people.SessionKind, find func(*http.Request) (Principal, error)) (Principal, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	p, err := find(r)
	if err != nil || p.Session.Kind != kind {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "log in again")
		return p, false
	}
	if err := r.ParseForm(); err != nil {
		writeProblem(w, http.StatusBadRequest, "malformed request", "form does not parse")
		return p, false
	}
	if !s.sameOrigin(r, false) || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.csrfFor(p.Token))) {
		s.log.Warn("form post without a valid CSRF token or from another origin", "path", r.URL.Path, "operator", p.Session.Operator, "customer", p.Session.Customer)
		writeProblem(w, http.StatusForbidden, "forbidden", errFormCSRF.Error())
		return p, false
	}
	return p, true
}

// back redirects to a console page with a notice or an error.
func back(w http.ResponseWriter, r *http.Request, page string, err error, ok string) {
	q := url.Values{}
	if err != nil {
		q.Set("err", err.Error())
	} else if ok != "" {
		q.Set("ok", ok)
	}
	target := page
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// publicErr turns an error into text an operator may see.
func publicErr(err error) error {
	if _, _, known := statusOf(err); known || errors.Is(err, errBadJSON) || errors.Is(err, errForbidden) {
		return err
	}
	return errors.New("internal error; see the core's log")
}

func (s *Server) registerConsole() {
	s.handle("GET", "/console/static/style.css", false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		b, _ := webFS.ReadFile("web/style.css")
		w.Write(b)
	})
	s.handle("GET", "/console/static/kinko.js", false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		b, _ := webFS.ReadFile("web/kinko.js")
		w.Write(b)
	})
	s.handle("GET", "/console/enrol", false, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.render(w, "enrol", http.StatusOK, view{Title: "Enrol", Data: map[string]string{"Operator": q.Get("operator"), "Code": q.Get("code")}})
	})
	s.handle("GET", "/status", false, func(w http.ResponseWriter, r *http.Request) {
		v := view{Title: "Status", Data: s.statusView()}
		if p, err := s.principal(r); err == nil && p.Session.Kind == people.SessionOperator {
			v, _, _ = s.consoleUser(w, r)
			v.Title, v.Data = "Status", s.statusView()
		}
		s.render(w, "status", http.StatusOK, v)
	})
	s.handle("GET", "/console/login", false, s.consoleLoginPage)
	s.handle("POST", "/console/login", false, s.consoleLogin)
	s.handle("POST", "/console/logout", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		s.submit(r.Context(), core.Logout{TokenHash: p.Token})
		http.SetCookie(w, s.cookie(cookieName, "", -1))
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
	})
	s.handle("GET", "/console/", false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/console/" {
			notFound(w, r)
			return
		}
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		seq, _, _ := s.core.Journal().Head()
		d := struct {
			Customers, Pending int
			Seq                uint64
			Status             StatusView
		}{Seq: seq, Status: s.statusView()}
		s.core.Read(func(st *core.State) {
			d.Customers = st.People.CustomerCount()
			for _, q := range st.People.Requests() {
				if q.State == people.RequestPending {
					d.Pending++
				}
			}
		})
		v.Title, v.Nav, v.Data = "Dashboard", "home", d
		s.render(w, "home", http.StatusOK, v)
	})
	s.handle("GET", "/console/customers", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		_, cursor, _ := paging(r)
		page := Page[CustomerView]{}
		s.core.Read(func(st *core.State) {
			for _, c := range st.People.Customers(cursor, DefaultLimit) {
				page.Items = append(page.Items, s.customerView(c))
			}
			if cursor+DefaultLimit < st.People.CustomerCount() {
				page.Next = strconv.Itoa(cursor + DefaultLimit)
			}
		})
		v.Title, v.Nav, v.Data = "Customers", "customers", page
		s.render(w, "customers", http.StatusOK, v)
	})
	s.handle("POST", "/console/customers/{id}/kyc", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err == nil {
			_, err = s.submit(r.Context(), core.SetKYC{Customer: peopleID(id), KYC: people.KYC(r.PostForm.Get("kyc")), Actor: p.Session.Operator, Reason: r.PostForm.Get("reason")})
		}
		back(w, r, "/console/customers", publicErrOrNil(err), "KYC updated")
	})
	s.handle("GET", "/console/operators", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		var items []OperatorView
		s.core.Read(func(st *core.State) {
			for _, o := range st.People.Operators() {
				items = append(items, operatorView(o))
			}
		})
		code, _, _ := auth.NewToken()
		v.Title, v.Nav, v.Data = "Operators", "operators", map[string]any{"Items": items, "Code": code[:22], "Roles": people.AllRoles}
		s.render(w, "operators", http.StatusOK, v)
	})
	s.handle("POST", "/console/operators/roles", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		var roles []people.Role
		for _, f := range strings.Split(r.PostForm.Get("roles"), ",") {
			if f = strings.TrimSpace(f); f != "" {
				roles = append(roles, people.Role(f))
			}
		}
		payload, _ := json.Marshal(people.SetRolesPayload{Operator: r.PostForm.Get("operator"), Roles: roles})
		s.consoleRequest(w, r, p, "/console/approvals", "role change requested: a second admin must approve it", func() (OpenRequestRequest, error) {
			return OpenRequestRequest{Kind: people.KindSetRoles, Payload: payload, Reason: r.PostForm.Get("reason"), RequiredRole: people.RoleAdmin}, nil
		})
	})
	s.handle("POST", "/console/operators/add", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		s.consoleRequest(w, r, p, "/console/approvals", "operator requested: a second admin must approve it; give them the enrolment code", func() (OpenRequestRequest, error) {
			f := r.PostForm
			var roles []people.Role
			for _, x := range strings.Split(f.Get("roles"), ",") {
				if x = strings.TrimSpace(x); x != "" {
					roles = append(roles, people.Role(x))
				}
			}
			if len(f.Get("code")) < 16 {
				return OpenRequestRequest{}, fmt.Errorf("%w: an enrolment code of at least 16 characters", people.ErrInvalid)
			}
			h := auth.HashToken(f.Get("code"))
			payload, _ := json.Marshal(people.AddOperatorPayload{Operator: f.Get("operator"), Roles: roles, Code: hex.EncodeToString(h[:]),
				CodeExpires: s.now().Add(7 * 24 * time.Hour).Truncate(time.Hour).UnixNano()})
			return OpenRequestRequest{Kind: people.KindAddOperator, Payload: payload, Reason: f.Get("reason"), RequiredRole: people.RoleAdmin}, nil
		})
	})
	for _, what := range []people.RequestKind{people.KindEnrolCredential, people.KindRemoveCredential} {
		s.handle("POST", "/console/operators/"+string(what), false, func(w http.ResponseWriter, r *http.Request) {
			p, ok := s.consolePost(w, r)
			if !ok {
				return
			}
			s.consoleRequest(w, r, p, "/console/approvals", string(what)+" requested: a second admin must approve it", func() (OpenRequestRequest, error) {
				f := r.PostForm
				id, err := base64.RawURLEncoding.DecodeString(f.Get("credential"))
				if err != nil {
					return OpenRequestRequest{}, fmt.Errorf("%w: credential", people.ErrInvalid)
				}
				payload, _ := json.Marshal(people.CredentialPayload{Operator: f.Get("operator"), Credential: id, Fingerprint: f.Get("fingerprint")})
				return OpenRequestRequest{Kind: what, Payload: payload, Reason: f.Get("reason"), RequiredRole: people.RoleAdmin}, nil
			})
		})
	}
	s.handle("GET", "/console/approvals", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		// Each request in words (what it does, assets and switches by
		// name), its payload in the API's form for who wants it; Approve
		// only to an operator who may (not its author, nor its subject,
		// with the role it needs), Reject to them and to its author.
		type row struct {
			RequestView
			PayloadText           string
			MayApprove, MayReject bool
		}
		var items []row
		s.core.Read(func(st *core.State) {
			me, found := st.People.Operator(v.Operator)
			for _, q := range st.People.Requests() {
				rv := requestView(st, q)
				mine := q.Requester == v.Operator
				may := found && me.HasRole(q.RequiredRole)
				items = append(items, row{RequestView: rv, PayloadText: string(rv.Payload), MayApprove: !mine && may, MayReject: mine || may})
			}
		})
		slices.SortStableFunc(items, func(a, b row) int { return b.Created.Compare(a.Created) }) // newest first
		v.Title, v.Nav, v.Data = "Approvals", "approvals", map[string]any{"Items": items}
		s.render(w, "approvals", http.StatusOK, v)
	})
	for _, approve := range []bool{true, false} {
		verb := "reject"
		if approve {
			verb = "approve"
		}
		s.handle("POST", "/console/approvals/{id}/"+verb, false, func(w http.ResponseWriter, r *http.Request) {
			p, ok := s.consolePost(w, r)
			if !ok {
				return
			}
			s.consoleSigned(w, r, "/console/approvals", "request "+verb+"d", func() (core.Command, error) {
				return core.DecideRequest{ID: r.PathValue("id"), Decider: p.Session.Operator, Reason: r.PostForm.Get("reason"), Approve: approve}, nil
			})
		})
	}
	s.handle("GET", "/console/assets", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		d := map[string]any{"Assets": s.assetViews()}
		s.core.Read(func(st *core.State) {
			var rv []map[string]string
			for _, x := range st.People.Reviews() {
				a, _ := st.Ledger.Asset(x.Asset)
				rv = append(rv, map[string]string{"Asset": a.Code, "AMLRisk": x.AMLRisk, "ChainMaturity": x.ChainMaturity, "Multisig": x.Multisig,
					"CustodyPlan": x.CustodyPlan, "Recommendation": x.Recommendation, "Reviewer": x.Reviewer})
			}
			d["Reviews"] = rv
		})
		v.Title, v.Nav, v.Data = "Assets", "assets", d
		s.render(w, "assets", http.StatusOK, v)
	})
	s.handle("POST", "/console/assets", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		s.consoleSigned(w, r, "/console/assets", "asset proposed: it stays disabled until reviewed and approved", func() (core.Command, error) {
			id, err1 := strconv.ParseUint(r.PostForm.Get("id"), 10, 32)
			dec, err2 := strconv.ParseUint(r.PostForm.Get("decimals"), 10, 8)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%w: id and decimals are numbers", people.ErrInvalid)
			}
			return ProposeAssetCommand(p.Session.Operator, ProposeAssetRequest{ID: assetID(id), Code: r.PostForm.Get("code"), Decimals: uint8(dec), Class: r.PostForm.Get("class"), Reason: r.PostForm.Get("reason")})
		})
	})
	s.handle("POST", "/console/assets/review", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		f := r.PostForm
		err := s.ReviewAsset(r.Context(), p.Session.Operator, f.Get("code"), ReviewRequest{AMLRisk: f.Get("aml_risk"), ChainMaturity: f.Get("chain_maturity"),
			Multisig: f.Get("multisig"), CustodyPlan: f.Get("custody_plan"), Recommendation: f.Get("recommendation")})
		back(w, r, "/console/assets", publicErrOrNil(err), "review recorded")
	})
	s.handle("POST", "/console/assets/{code}/list", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		var id uint32
		var found bool
		s.core.Read(func(st *core.State) {
			a, ok := st.Ledger.AssetByCode(strings.ToUpper(r.PathValue("code")))
			id, found = uint32(a.ID), ok
		})
		s.consoleRequest(w, r, p, "/console/approvals", "listing requested: an approver must approve it", func() (OpenRequestRequest, error) {
			if !found {
				return OpenRequestRequest{}, fmt.Errorf("%w: asset", people.ErrAssetNotProposed)
			}
			payload, _ := json.Marshal(people.ListAssetPayload{Asset: assetID(uint64(id))})
			return OpenRequestRequest{Kind: people.KindListAsset, Payload: payload, Reason: r.PostForm.Get("reason"), RequiredRole: people.RoleApprover}, nil
		})
	})
	s.handle("GET", "/console/reserves", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		rep, err := s.reserves()
		if err != nil {
			v.Error = publicErr(err).Error()
		}
		d := map[string]any{"Report": rep}
		s.core.Read(func(st *core.State) {
			var ws []map[string]any
			for _, w := range st.Custody.Wallets() {
				a, _ := st.Ledger.Asset(w.Asset)
				acct, _ := st.Ledger.Account(w.Account())
				ws = append(ws, map[string]any{"ID": w.ID, "Kind": w.Kind.String(), "Asset": a.Code, "Balance": acct.SignedBalance().FormatDecimal(a.Decimals),
					"Descriptor": w.Descriptor, "NextIndex": w.NextIndex})
			}
			d["Wallets"] = ws
			d["Ceremonies"] = st.Custody.Ceremonies()
		})
		v.Title, v.Nav, v.Data = "Wallets and reserves", "reserves", d
		s.render(w, "reserves", http.StatusOK, v)
	})
	s.handle("GET", "/console/withdrawals", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		d := map[string]any{}
		s.core.Read(func(st *core.State) {
			var items []WithdrawalView
			for _, wd := range st.Withdraw.Withdrawals(0) {
				items = append(items, viewOf(wd))
			}
			d["Items"] = items
			d["Batches"] = st.Withdraw.Batches()
		})
		v.Title, v.Nav, v.Data = "Withdrawals", "withdrawals", d
		s.render(w, "withdrawals", http.StatusOK, v)
	})
	s.handle("GET", "/console/journal", false, s.consoleJournal)

}

func publicErrOrNil(err error) error {
	if err == nil {
		return nil
	}
	return publicErr(err)
}

func (s *Server) consoleLoginPage(w http.ResponseWriter, r *http.Request) {
	tok := s.preSession(w, preCookie, "/")
	s.render(w, "login", http.StatusOK, view{Title: "Log in", CSRF: tok, Error: r.URL.Query().Get("err")})
}

// preSession starts a sign-in form: a random token, double-submitted in
// the cookie name (for the pages under path) and in the form.
func (s *Server) preSession(w http.ResponseWriter, name, path string) string {
	var b [16]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	http.SetCookie(w, s.cookieAt(name, tok, path, 600))
	return tok
}

// preChecked parses a sign-in form within MaxBody and checks its token
// against the cookie name's; it answers a refusal itself.
func (s *Server) preChecked(w http.ResponseWriter, r *http.Request, name string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if err := r.ParseForm(); err != nil {
		writeProblem(w, http.StatusBadRequest, "malformed request", "form does not parse")
		return false
	}
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" || !hmac.Equal([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) {
		writeProblem(w, http.StatusForbidden, "forbidden", errFormCSRF.Error())
		return false
	}
	return true
}

func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.preChecked(w, r, preCookie) {
		return
	}
	if !s.limit.allow("console/"+clientAddr(r), s.now()) {
		back(w, r, "/console/login", errors.New("too many attempts; wait a minute"), "")
		return
	}
	res, err := s.FinishLogin(r.Context(), FinishRequest{Operator: r.PostForm.Get("name"), Credential: json.RawMessage(r.PostForm.Get("credential"))})
	if err != nil {
		if !errors.Is(err, errLoginKey) {
			err = publicErr(err)
		}
		back(w, r, "/console/login", err, "")
		return
	}
	http.SetCookie(w, s.cookie(preCookie, "", -1))
	http.SetCookie(w, s.cookie(cookieName, res.Token, int(s.cfg.SessionTTL.Seconds())))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}
