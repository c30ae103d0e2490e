package itest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/opclient"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
)

// HTTPError is an answer of the core's API other than the one expected:
// its status and problem document, so that tests of refusals can check
// what was refused and why.
type HTTPError struct {
	Method, Path string
	Status       int
	Title        string
	Detail       string
}

// Error says which request got which answer.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("itest: %s %s = %d %s: %s", e.Method, e.Path, e.Status, e.Title, e.Detail)
}

// maxAnswer bounds an API answer the clients read.
const maxAnswer = 4 << 20

// apiClient calls the core's JSON API.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string) apiClient {
	return apiClient{base: base, http: &http.Client{Timeout: 30 * time.Second}}
}

// httpsClient returns an HTTP client that trusts only the CA
// certificates of caFile (PEM): the deployment's private CA.
func httpsClient(caFile string, timeout time.Duration) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("itest: %s holds no certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// do sends body (JSON, if not nil) with the bearer token and headers, and
// decodes an answer with status want into out (if not nil).
func (c apiClient) do(ctx context.Context, method, path, token string, body any, want int, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("itest: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("itest: %s %s: %w", method, path, err)
	}
	if res.StatusCode != want {
		var p api.Problem
		json.Unmarshal(data, &p)
		if p.Title == "" {
			p.Detail = string(bytes.TrimSpace(data))
		}
		return &HTTPError{Method: method, Path: path, Status: res.StatusCode, Title: p.Title, Detail: p.Detail}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("itest: %s %s: answer %q: %w", method, path, data, err)
		}
	}
	return nil
}

// authenticator is a person's TOTP app. The core takes each time step's
// code once per person (logins and money-moving requests alike) and
// accepts the steps next to the current one, so the authenticator hands
// out ever newer steps and waits for the clock only when it has used
// every step the core would accept now.
type authenticator struct {
	secret string
	mu     sync.Mutex
	last   uint64 // the last step handed out
}

// stepMargin keeps the previous step out of use this close to a step
// boundary: the code could reach the core after the boundary, when that
// step is no longer accepted.
const stepMargin = 5 * time.Second

// code returns a code of a step newer than every one handed out, waiting
// until the core accepts one.
func (a *authenticator) code(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		now := time.Now()
		cur := uint64(now.Unix()) / auth.Period
		lo := cur - auth.Skew
		if next := time.Unix(int64((cur+1)*auth.Period), 0); next.Sub(now) < stepMargin {
			lo = cur
		}
		s := max(a.last+1, lo)
		if s <= cur+auth.Skew {
			a.last = s
			return auth.Code(a.secret, time.Unix(int64(s*auth.Period), 0)), nil
		}
		// s is accepted once the current step is s-Skew.
		at := time.Unix(int64((s-auth.Skew)*auth.Period), 0).Add(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("itest: waiting for a fresh TOTP step: %w", ctx.Err())
		case <-time.After(time.Until(at)):
		}
	}
}

// Customer is a customer of the deployment acting through the core's API
// as a customer would: signed up with an email and password, logged in
// with a TOTP code, an intent key kept on their device, a fresh TOTP code
// for every request that moves money.
type Customer struct {
	ID       ledger.OwnerID
	Email    string
	Password string
	// Key is the customer's intent key (RegisterKey makes it).
	Key ed25519.PrivateKey

	api   apiClient
	totp  *authenticator
	token string
	// cooling is when the last key or address was registered: the core's
	// cool-down runs from then.
	cooling time.Time
}

// SignUp signs a customer up at the core's API (POST /v1/customers) and
// returns the client, not yet logged in.
func SignUp(ctx context.Context, coreURL, email, name, password string) (*Customer, error) {
	return signUp(ctx, newAPIClient(coreURL), email, name, password)
}

// signUp is SignUp through a client of the API.
func signUp(ctx context.Context, ac apiClient, email, name, password string) (*Customer, error) {
	c := &Customer{Email: email, Password: password, api: ac}
	var res api.SignUpResponse
	if err := c.api.do(ctx, "POST", "/v1/customers", "", api.SignUpRequest{Email: email, Name: name, Password: password}, http.StatusCreated, &res); err != nil {
		return nil, err
	}
	c.ID, c.totp = res.Customer, &authenticator{secret: res.TOTPSecret}
	return c, nil
}

// Login logs in with the password and a TOTP code.
func (c *Customer) Login(ctx context.Context) error {
	code, err := c.totp.code(ctx)
	if err != nil {
		return err
	}
	var res api.LoginResponse
	if err := c.api.do(ctx, "POST", "/v1/customers/login", "", api.LoginRequest{Email: c.Email, Password: c.Password, TOTP: code}, http.StatusOK, &res); err != nil {
		return err
	}
	c.token = res.Token
	return nil
}

// moneyMove sends a money-moving request with a fresh TOTP code in X-TOTP.
func (c *Customer) moneyMove(ctx context.Context, path string, body any, out any) error {
	code, err := c.totp.code(ctx)
	if err != nil {
		return err
	}
	return c.api.do(ctx, "POST", path, c.token, body, http.StatusCreated, out, "X-TOTP", code)
}

// RegisterKey makes an intent key if the customer has none and registers
// its public key (POST /v1/me/intent-keys).
func (c *Customer) RegisterKey(ctx context.Context) error {
	if c.Key == nil {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		c.Key = k
	}
	pub := c.Key.Public().(ed25519.PublicKey)
	if err := c.moneyMove(ctx, "/v1/me/intent-keys", api.IntentKeyRequest{PublicKey: hex.EncodeToString(pub)}, nil); err != nil {
		return err
	}
	c.cooling = time.Now()
	return nil
}

// Whitelist adds a bitcoin withdrawal address (POST /v1/me/whitelist).
func (c *Customer) Whitelist(ctx context.Context, address string) error {
	return c.WhitelistAsset(ctx, "BTC", address)
}

// WhitelistAsset adds a withdrawal address of an asset (POST
// /v1/me/whitelist).
func (c *Customer) WhitelistAsset(ctx context.Context, asset, address string) error {
	if err := c.moneyMove(ctx, "/v1/me/whitelist", api.WhitelistRequest{Asset: asset, Address: address}, nil); err != nil {
		return err
	}
	c.cooling = time.Now()
	return nil
}

// CoolingSince returns when the customer last registered a key or an
// address: the core's cool-down counts from the entry, which is earlier.
func (c *Customer) CoolingSince() time.Time { return c.cooling }

// IntentExpiry is how long a withdrawal intent Withdraw signs is valid.
const IntentExpiry = time.Hour

// Withdraw signs an intent to pay amount satoshi to address with the
// customer's intent key and requests it (POST /v1/me/withdrawals). It
// returns the withdrawal as the core recorded it: queued, awaiting
// approval or rejected with the policy's reason.
func (c *Customer) Withdraw(ctx context.Context, requestID, address string, amount uint64) (api.WithdrawalView, error) {
	return c.WithdrawAsset(ctx, "BTC", requestID, address, amount)
}

// WithdrawAsset is Withdraw of an asset's base units (wei for ETH).
func (c *Customer) WithdrawAsset(ctx context.Context, asset, requestID, address string, amount uint64) (api.WithdrawalView, error) {
	if c.Key == nil {
		return api.WithdrawalView{}, errors.New("itest: the customer has no intent key (RegisterKey)")
	}
	in := withdraw.Intent{RequestID: requestID, Asset: asset, Address: address, Amount: withdraw.AmountOf(amount), Expiry: time.Now().Add(IntentExpiry).Unix()}
	sig, err := in.Sign(c.Key)
	if err != nil {
		return api.WithdrawalView{}, err
	}
	req := api.WithdrawalRequest{RequestID: requestID, Asset: in.Asset, Address: address, Amount: api.WideUnits(in.Amount), Expiry: api.Time{Time: time.Unix(in.Expiry, 0).UTC()},
		PublicKey: hex.EncodeToString(c.Key.Public().(ed25519.PublicKey)), Signature: hex.EncodeToString(sig)}
	var v api.WithdrawalView
	err = c.moneyMove(ctx, "/v1/me/withdrawals", req, &v)
	return v, err
}

// Withdrawals returns the customer's withdrawals (GET /v1/me/withdrawals).
func (c *Customer) Withdrawals(ctx context.Context) ([]api.WithdrawalView, error) {
	var res struct {
		Items []api.WithdrawalView `json:"items"`
	}
	err := c.api.do(ctx, "GET", "/v1/me/withdrawals", c.token, nil, http.StatusOK, &res)
	return res.Items, err
}

// DepositAddress asks for a new bitcoin deposit address of the cold
// customer wallet (POST /v1/me/deposit-addresses).
func (c *Customer) DepositAddress(ctx context.Context) (string, error) {
	return c.DepositAddressOf(ctx, "BTC")
}

// DepositAddressOf asks for a new deposit address of asset's cold
// customer wallet (POST /v1/me/deposit-addresses).
func (c *Customer) DepositAddressOf(ctx context.Context, asset string) (string, error) {
	var v api.DepositAddressView
	err := c.api.do(ctx, "POST", "/v1/me/deposit-addresses", c.token, api.DepositAddressRequest{Asset: asset}, http.StatusCreated, &v)
	return v.Address, err
}

// Deposits returns the customer's deposits as the core shows them
// (GET /v1/me/deposits).
func (c *Customer) Deposits(ctx context.Context) ([]api.DepositView, error) {
	var res struct {
		Items []api.DepositView `json:"items"`
	}
	err := c.api.do(ctx, "GET", "/v1/me/deposits", c.token, nil, http.StatusOK, &res)
	return res.Items, err
}

// Deposit returns the customer's deposit of outpoint op (as
// /v1/me/deposits names it), and whether there is one.
func (c *Customer) Deposit(ctx context.Context, op string) (api.DepositView, bool, error) {
	deps, err := c.Deposits(ctx)
	if err != nil {
		return api.DepositView{}, false, err
	}
	for _, dep := range deps {
		if dep.Outpoint == op {
			return dep, true, nil
		}
	}
	return api.DepositView{}, false, nil
}

// Available returns the customer's available bitcoin, in satoshi
// (GET /v1/me/balances).
func (c *Customer) Available(ctx context.Context) (uint64, error) {
	var res struct {
		Balances []api.BalanceView `json:"balances"`
	}
	if err := c.api.do(ctx, "GET", "/v1/me/balances", c.token, nil, http.StatusOK, &res); err != nil {
		return 0, err
	}
	for _, b := range res.Balances {
		if b.Asset == "BTC" && b.Kind == ledger.KindAvailable.String() {
			v, ok := b.Available.Uint64()
			if !ok {
				return 0, fmt.Errorf("itest: available %s does not fit 64 bits", b.Available)
			}
			return v, nil
		}
	}
	return 0, nil
}

// Operator is an operator of the deployment acting through the core's
// API: signed in with their CLI key.
type Operator struct {
	Name    string
	KeyFile string

	api    apiClient
	client *opclient.Client
	token  string
}

// Login signs in with the operator's key.
func (o *Operator) Login(ctx context.Context) error {
	if err := o.client.Login(ctx); err != nil {
		return err
	}
	o.token = o.client.Token()
	return nil
}

// SetKYC records a customer's KYC state (POST /v1/customers/{id}/kyc).
func (o *Operator) SetKYC(ctx context.Context, customer ledger.OwnerID, kyc people.KYC, reason string) error {
	return o.api.do(ctx, "POST", fmt.Sprintf("/v1/customers/%d/kyc", customer), o.token, api.KYCRequest{KYC: kyc, Reason: reason}, http.StatusOK, nil)
}

// Withdrawals returns every withdrawal (GET /v1/withdrawals).
func (o *Operator) Withdrawals(ctx context.Context) ([]api.WithdrawalView, error) {
	var res struct {
		Items []api.WithdrawalView `json:"items"`
	}
	err := o.api.do(ctx, "GET", "/v1/withdrawals", o.token, nil, http.StatusOK, &res)
	return res.Items, err
}

// Reserves returns the bitcoin row of the reserves report
// (GET /v1/reserves): customer liabilities, the wallets' ledger balances,
// the hot share.
func (o *Operator) Reserves(ctx context.Context) (reserves.Row, error) {
	return o.ReservesOf(ctx, "BTC")
}

// ReservesOf returns the reserves report's row of the asset code.
func (o *Operator) ReservesOf(ctx context.Context, asset string) (reserves.Row, error) {
	var rep reserves.Report
	if err := o.api.do(ctx, "GET", "/v1/reserves", o.token, nil, http.StatusOK, &rep); err != nil {
		return reserves.Row{}, err
	}
	for _, r := range rep.Rows {
		if r.Asset == asset {
			return r, nil
		}
	}
	return reserves.Row{}, fmt.Errorf("itest: the reserves report has no %s row", asset)
}

// Incidents lists the incidents (GET /v1/incidents).
func (o *Operator) Incidents(ctx context.Context) ([]api.IncidentView, error) {
	var v struct {
		Items []api.IncidentView `json:"items"`
	}
	err := o.api.do(ctx, "GET", "/v1/incidents", o.token, nil, http.StatusOK, &v)
	return v.Items, err
}

// Status returns the public status: what is halted (GET /v1/status).
func (o *Operator) Status(ctx context.Context) (api.StatusView, error) {
	var v api.StatusView
	err := o.api.do(ctx, "GET", "/v1/status", "", nil, http.StatusOK, &v)
	return v, err
}

// LoginCustomer logs in an existing customer (the demo's, say) whose
// password and TOTP secret the test knows.
func LoginCustomer(ctx context.Context, coreURL string, id ledger.OwnerID, email, password, totpSecret string) (*Customer, error) {
	c := &Customer{ID: id, Email: email, Password: password, api: newAPIClient(coreURL), totp: &authenticator{secret: totpSecret}}
	return c, c.Login(ctx)
}

// LoginOperator signs in an existing operator with the CLI key in keyFile
// (a demo operator's, say).
func LoginOperator(ctx context.Context, coreURL, name, keyFile string) (*Operator, error) {
	k, err := passkey.LoadSoftKey(keyFile)
	if err != nil {
		return nil, err
	}
	o := &Operator{Name: name, KeyFile: keyFile, api: newAPIClient(coreURL), client: opclient.New(coreURL, name, k)}
	return o, o.Login(ctx)
}

// Order places a limit order (POST /v1/me/orders) and returns the order
// as the core answered it.
func (c *Customer) Order(ctx context.Context, marketCode, side string, price, qty int64) (map[string]any, error) {
	var out map[string]any
	var sd api.Side
	if err := sd.UnmarshalText([]byte(side)); err != nil {
		return nil, err
	}
	err := c.api.do(ctx, "POST", "/v1/me/orders", c.token, api.OrderRequest{Market: marketCode, Side: sd, Type: api.OrderType(market.Limit), Price: api.Units(price), Qty: api.Units(qty)}, http.StatusCreated, &out)
	return out, err
}

// Balances returns the customer's balances (GET /v1/me/balances).
func (c *Customer) Balances(ctx context.Context) ([]api.BalanceView, error) {
	var res struct {
		Balances []api.BalanceView `json:"balances"`
	}
	err := c.api.do(ctx, "GET", "/v1/me/balances", c.token, nil, http.StatusOK, &res)
	return res.Balances, err
}

// YenView is what GET /v1/me/yen answers that a test reads.
type YenView struct {
	VirtualAccount struct {
		Number string `json:"number"`
	} `json:"virtual_account"`
	BankAccounts []api.YenAccountView    `json:"bank_accounts"`
	Deposits     []yen.Deposit           `json:"deposits"`
	Withdrawals  []api.YenWithdrawalView `json:"withdrawals"`
}

// Yen returns the customer's yen: virtual account, bank accounts,
// deposits and withdrawals (GET /v1/me/yen).
func (c *Customer) Yen(ctx context.Context) (YenView, error) {
	var v YenView
	err := c.api.do(ctx, "GET", "/v1/me/yen", c.token, nil, http.StatusOK, &v)
	return v, err
}

// RegisterBankAccount registers a bank account for yen withdrawals
// (POST /v1/me/yen/bank-accounts) and returns it as registered.
func (c *Customer) RegisterBankAccount(ctx context.Context, a api.BankAccountRequest) (api.YenAccountView, error) {
	var res struct {
		Account api.YenAccountView `json:"account"`
	}
	err := c.moneyMove(ctx, "/v1/me/yen/bank-accounts", a, &res)
	return res.Account, err
}

// WithdrawYen asks for yen to a registered bank account
// (POST /v1/me/yen/withdrawals).
func (c *Customer) WithdrawYen(ctx context.Context, requestID, account string, amount uint64) (api.WithdrawalView, error) {
	var v api.WithdrawalView
	err := c.moneyMove(ctx, "/v1/me/yen/withdrawals", api.YenWithdrawalRequest{RequestID: requestID, Account: account, Amount: fmt.Sprint(amount)}, &v)
	return v, err
}

// JPY returns the customer's available and held yen (GET /v1/me/balances).
func (c *Customer) JPY(ctx context.Context) (available, held uint64, err error) {
	bs, err := c.Balances(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, b := range bs {
		if b.Asset != "JPY" {
			continue
		}
		switch b.Kind {
		case ledger.KindAvailable.String():
			available, _ = b.Available.Uint64()
		case ledger.KindHeld.String():
			held, _ = strconv.ParseUint(b.Decimal, 10, 64) // yen has no decimals
		}
	}
	return available, held, nil
}
