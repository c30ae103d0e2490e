package ethcold

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
)

// Errors of a description's refusals.
var (
	// ErrNotOurs: the Safe is not registered on this machine, or holds
	// none of its keys.
	ErrNotOurs = errors.New("ethcold: not a Safe this machine signs for")
	// ErrOutside: a call pays an address registered nowhere here.
	ErrOutside = errors.New("ethcold: a payment to an outside address")
	// ErrCalldata: a call carries calldata; a refill or sweep is a plain
	// Ether transfer.
	ErrCalldata = errors.New("ethcold: a call with calldata")
)

// Description is a SafeTx in plain words from the offline registry, and
// what makes this machine refuse it.
type Description struct {
	Text    string
	Entry   *Entry // the registered Safe that signs, nil if none
	Calls   []safe.Call
	Out     *big.Int // wei leaving the Safe in all
	Outside *big.Int // wei to addresses registered nowhere here
	Refused []error
}

// Refusal returns the refusals joined, or nil.
func (d *Description) Refusal() error { return errors.Join(d.Refused...) }

func weiText(x *big.Int) string {
	return fmt.Sprintf("%s (%s wei)", FormatEther(x), x)
}

func zeroAddr(a common.Address) string {
	if a == (common.Address{}) {
		return "none"
	}
	return a.Hex()
}

// Describe says what tx would make its Safe do, with the Safes and
// destinations of reg as the only wallets that are ours, and collects
// every reason to refuse it: a Safe not registered here or holding none of
// this machine's keys, a gas refund, a DELEGATECALL to anything but the
// MultiSendCallOnly pinned here, a call with calldata, a payment to an
// outside address.
func Describe(reg *Registry, tx *Tx) *Description {
	d := &Description{Out: new(big.Int), Outside: new(big.Int)}
	var b strings.Builder
	st := tx.SafeTx
	fmt.Fprintf(&b, "Safe transaction %s (its EIP-712 hash, computed on this machine)\n", tx.Hash.Hex())
	e := reg.Lookup(tx.ChainID, tx.Safe)
	switch {
	case e == nil:
		fmt.Fprintf(&b, "  Safe: %s on chain %s  [not registered on this machine]\n", tx.Safe.Hex(), tx.ChainID)
		why := fmt.Sprintf("the Safe %s on chain %s is not registered on this machine", tx.Safe.Hex(), tx.ChainID)
		for i := range reg.Safes {
			if x := &reg.Safes[i]; x.SafeAddress() == tx.Safe {
				why += fmt.Sprintf(" (%s is registered at that address on chain %d)", x.Label(), x.ChainID)
			}
		}
		d.Refused = append(d.Refused, fmt.Errorf("%w: %s", ErrNotOurs, why))
	case e.Destination:
		fmt.Fprintf(&b, "  Safe: %s %s on chain %d  [a destination: this machine holds none of its keys]\n", e.Label(), e.Address, e.ChainID)
		d.Refused = append(d.Refused, fmt.Errorf("%w: %s is registered as a destination, which this machine never signs for", ErrNotOurs, e.Label()))
	default:
		d.Entry = e
		fmt.Fprintf(&b, "  Safe: %s %s on chain %d, %d-of-%d, this machine's owner %s\n", e.Label(), e.Address, e.ChainID, e.Threshold, len(e.Owners), e.Owner)
	}
	fmt.Fprintf(&b, "  nonce: %s\n", st.Nonce)
	if isZeroInt(st.BaseGas) && isZeroInt(st.GasPrice) && st.GasToken == (common.Address{}) && st.RefundReceiver == (common.Address{}) {
		fmt.Fprintln(&b, "  gas refund: none (baseGas 0, gasPrice 0, no gas token, no refund receiver): the submitter's gas account pays the gas")
		if isZeroInt(st.SafeTxGas) {
			fmt.Fprintln(&b, "  safeTxGas: 0 (a failing call reverts the whole transaction and leaves this SafeTx executable later)")
		} else {
			fmt.Fprintf(&b, "  safeTxGas: %s (moves no money at gasPrice 0; a failing call uses the nonce, so this SafeTx cannot execute later)\n", st.SafeTxGas)
		}
	} else {
		fmt.Fprintf(&b, "  gas refund: safeTxGas %s, baseGas %s, gasPrice %s, gas token %s, refund receiver %s  [the Safe would pay it from its balance]\n",
			st.SafeTxGas, st.BaseGas, st.GasPrice, zeroAddr(st.GasToken), zeroAddr(st.RefundReceiver))
	}
	var pinned common.Address
	if e != nil {
		pinned = e.MultiSendAddress()
	}
	switch st.Operation {
	case safe.OpCall:
		fmt.Fprintln(&b, "  operation: CALL")
	case safe.OpDelegateCall:
		if st.To == pinned && pinned != (common.Address{}) {
			fmt.Fprintf(&b, "  operation: DELEGATECALL to the MultiSendCallOnly pinned here (%s): a batch, each call shown below\n", pinned.Hex())
		} else {
			fmt.Fprintf(&b, "  operation: DELEGATECALL to %s, not the MultiSendCallOnly pinned here (%s): it would run that code as the Safe, with all it holds\n", st.To.Hex(), zeroAddr(pinned))
		}
	}
	calls, err := safe.Calls(st, pinned)
	if err != nil {
		d.Refused = append(d.Refused, err)
		fmt.Fprintf(&b, "  to: %s, value %s, %d bytes of data\n", st.To.Hex(), weiText(orZero(st.Value)), len(st.Data))
		d.Text = b.String()
		return d
	}
	d.Calls = calls
	fmt.Fprintln(&b, "  calls:")
	for i, c := range calls {
		label := "[payment to an outside address]"
		ours := false
		for _, x := range reg.OnChain(tx.ChainID) {
			if x.SafeAddress() == c.To {
				label, ours = "[ours: "+x.Label()+"]", true
				break
			}
		}
		fmt.Fprintf(&b, "    %d. %s  %s  %s\n", i+1, weiText(c.Value), c.To.Hex(), label)
		if len(c.Data) > 0 {
			sel := c.Data
			if len(sel) > 4 {
				sel = sel[:4]
			}
			fmt.Fprintf(&b, "       with %d bytes of calldata, selector 0x%x\n", len(c.Data), sel)
			d.Refused = append(d.Refused, fmt.Errorf("%w: call %d to %s carries %d bytes (selector 0x%x): a %s is a plain Ether transfer", ErrCalldata, i+1, c.To.Hex(), len(c.Data), sel, "refill or sweep"))
		}
		d.Out.Add(d.Out, c.Value)
		if !ours {
			d.Outside.Add(d.Outside, c.Value)
			d.Refused = append(d.Refused, fmt.Errorf("%w: call %d pays %s to %s, registered nowhere on this machine: a refill or sweep pays only wallets registered here", ErrOutside, i+1, FormatEther(c.Value), c.To.Hex()))
		}
	}
	fmt.Fprintf(&b, "  leaves the Safe: %s\n", weiText(d.Out))
	fmt.Fprintf(&b, "  paid to outside addresses: %s\n", weiText(d.Outside))
	d.Text = b.String()
	return d
}

func isZeroInt(x *big.Int) bool { return x == nil || x.Sign() == 0 }

func orZero(x *big.Int) *big.Int {
	if x == nil {
		return new(big.Int)
	}
	return x
}

// ErrDeposit: a deposit Safe's sweep this machine cannot derive or that
// pays anything but its wallet's Safe.
var ErrDeposit = errors.New("ethcold: not a sweep of a deposit Safe of ours")

// DescribeDeposit says what tx, the sweep of a deposit Safe, would do,
// from reg alone: the deposit Safe must be the counterfactual Safe of
// ref.Index of a cold customer Safe registered here with its descriptor
// (derived on this machine, never taken from the file: ref's descriptor
// must be that one), this machine an owner of it, and its SafeTx one
// plain CALL paying that registered Safe, without gas refund. Every
// reason to refuse is collected.
func DescribeDeposit(reg *Registry, tx *Tx, ref *DepositRef) *Description {
	d := &Description{Out: new(big.Int), Outside: new(big.Int)}
	var b strings.Builder
	st := tx.SafeTx
	refuse := func(f string, a ...any) {
		d.Refused = append(d.Refused, fmt.Errorf("%w: "+f, append([]any{ErrDeposit}, a...)...))
	}
	fmt.Fprintf(&b, "Safe transaction %s (its EIP-712 hash, computed on this machine)\n", tx.Hash.Hex())
	var e *Entry
	for _, x := range reg.OnChain(tx.ChainID) {
		if x.Destination || x.Descriptor == "" {
			continue
		}
		if a, err := x.DepositSafe(ref.Index); err == nil && a == tx.Safe {
			e = x
			break
		}
	}
	if e == nil {
		fmt.Fprintf(&b, "  Safe: %s on chain %s  [not deposit Safe %d of any Safe registered here]\n", tx.Safe.Hex(), tx.ChainID, ref.Index)
		refuse("the Safe %s on chain %s is not deposit Safe %d of any cold customer Safe registered on this machine with its descriptor", tx.Safe.Hex(), tx.ChainID, ref.Index)
	} else {
		d.Entry = e
		fmt.Fprintf(&b, "  Safe: deposit Safe %d of %s: %s, derived on this machine from the registered descriptor (%d-of-%d, the same owners; this machine's owner %s)\n",
			ref.Index, e.Label(), tx.Safe.Hex(), e.Threshold, len(e.Owners), e.Owner)
		if ref.Descriptor != e.Descriptor {
			refuse("the request names the descriptor %q, this machine registered %q for %s", ref.Descriptor, e.Descriptor, e.Label())
		}
	}
	fmt.Fprintf(&b, "  nonce: %s (the deposit Safe's own)\n", st.Nonce)
	if !isZeroInt(st.BaseGas) || !isZeroInt(st.GasPrice) || st.GasToken != (common.Address{}) || st.RefundReceiver != (common.Address{}) {
		fmt.Fprintf(&b, "  gas refund: baseGas %s, gasPrice %s, gas token %s, refund receiver %s  [the Safe would pay it from its balance]\n",
			st.BaseGas, st.GasPrice, zeroAddr(st.GasToken), zeroAddr(st.RefundReceiver))
		refuse("a gas refund from the deposit Safe")
	} else {
		fmt.Fprintln(&b, "  gas refund: none: the submitter's gas account pays the gas (and the proxy's deployment, if it has no code yet)")
	}
	value := orZero(st.Value)
	if len(st.Data) != 0 && st.Operation == safe.OpCall {
		describeTokenSweep(&b, d, e, st, refuse)
		d.Text = b.String()
		return d
	}
	switch {
	case st.Operation != safe.OpCall:
		fmt.Fprintf(&b, "  operation: DELEGATECALL to %s  [a deposit Safe's sweep is one CALL]\n", st.To.Hex())
		refuse("a DELEGATECALL: a deposit Safe's sweep is one plain CALL to its wallet's Safe")
	case len(st.Data) != 0:
		fmt.Fprintf(&b, "  call: %s to %s with %d bytes of calldata\n", weiText(value), st.To.Hex(), len(st.Data))
		refuse("calldata: a deposit Safe's sweep is a plain Ether transfer")
	case e != nil && st.To != e.SafeAddress():
		fmt.Fprintf(&b, "  call: %s to %s  [not %s's Safe %s]\n", weiText(value), st.To.Hex(), e.Label(), e.Address)
		d.Outside.Set(value)
		refuse("it pays %s to %s, not %s's own Safe %s", FormatEther(value), st.To.Hex(), e.Label(), e.Address)
	case value.Sign() == 0:
		refuse("it pays nothing")
	default:
		fmt.Fprintf(&b, "  call: %s to %s  [ours: %s's own Safe]\n", weiText(value), st.To.Hex(), labelOr(e))
	}
	d.Calls = []safe.Call{{To: st.To, Value: value, Data: st.Data}}
	d.Out.Set(value)
	fmt.Fprintf(&b, "  leaves the deposit Safe: %s\n", weiText(d.Out))
	d.Text = b.String()
	return d
}

func labelOr(e *Entry) string {
	if e == nil {
		return "?"
	}
	return e.Label()
}

// transferSelector is ERC-20 transfer(address,uint256)'s.
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// describeTokenSweep describes a deposit Safe's SafeTx that calls a
// contract: signed only as one CALL of no value to a token registered
// with e, its data exactly transfer(e's Safe, amount) in the canonical
// encoding.
func describeTokenSweep(b *strings.Builder, d *Description, e *Entry, st *safe.SafeTx, refuse func(string, ...any)) {
	var tok *Token
	if e != nil {
		tok = e.token(st.To)
	}
	data := st.Data
	if len(data) != 68 || string(data[:4]) != string(transferSelector) || strings.Trim(string(data[4:16]), "\x00") != "" {
		fmt.Fprintf(b, "  call: %s with %d bytes of calldata (selector 0x%x)  [not an ERC-20 transfer]\n", st.To.Hex(), len(data), data[:min(4, len(data))])
		refuse("calldata that is not one ERC-20 transfer(address, uint256)")
		return
	}
	to := common.BytesToAddress(data[16:36])
	amount := new(big.Int).SetBytes(data[36:68])
	d.Calls = []safe.Call{{To: st.To, Value: orZero(st.Value), Data: data}}
	if tok == nil {
		fmt.Fprintf(b, "  call: transfer(%s, %s) of the contract %s  [not a token registered here]\n", to.Hex(), amount, st.To.Hex())
		refuse("the contract %s is not a token registered here with %s", st.To.Hex(), labelOr(e))
		return
	}
	label := "[ours: " + e.Label() + "'s own Safe]"
	if to != e.SafeAddress() {
		label = "[not " + e.Label() + "'s own Safe " + e.Address + "]"
		refuse("it transfers %s %s to %s, not %s's own Safe %s", formatUnits(amount, tok.Decimals), tok.Symbol, to.Hex(), e.Label(), e.Address)
	}
	fmt.Fprintf(b, "  call: transfer of %s %s (%s base units) of the token %s at %s, registered here, to %s  %s\n",
		formatUnits(amount, tok.Decimals), tok.Symbol, amount, tok.Symbol, tok.Contract, to.Hex(), label)
	if v := orZero(st.Value); v.Sign() != 0 {
		refuse("it sends %s along with the token's transfer", FormatEther(v))
	}
	if amount.Sign() == 0 {
		refuse("it transfers nothing")
	}
	fmt.Fprintf(b, "  leaves the deposit Safe: %s %s and no Ether\n", formatUnits(amount, tok.Decimals), tok.Symbol)
}

// formatUnits writes base units with decimals places.
func formatUnits(x *big.Int, decimals uint8) string {
	if decimals == 0 {
		return x.String()
	}
	q, r := new(big.Int).QuoRem(x, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil), new(big.Int))
	return fmt.Sprintf("%s.%0*s", q, int(decimals), r)
}
