package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
)

// maxProofFile bounds a proof or head file the verifier reads.
const maxProofFile = 16 << 20

// headVerifier returns the verifier of heads: the key in pubkeyFile, or the
// data directory's own head key (in secretsDir; empty: DATA.secrets).
func headVerifier(dir, secretsDir, pubkeyFile string) (*tree.Verifier, error) {
	if pubkeyFile != "" {
		b, err := readSmall(pubkeyFile)
		if err != nil {
			return nil, err
		}
		v, err := tree.NewVerifier(string(b))
		if err != nil {
			return nil, fmt.Errorf("--pubkey %s: %w", pubkeyFile, err)
		}
		return v, nil
	}
	path, err := core.HeadKeyPath(secretsDir, dir)
	if err != nil {
		return nil, err
	}
	b, err := readSmall(path)
	if err != nil {
		return nil, fmt.Errorf("no --pubkey, and the data directory's head key: %w", err)
	}
	s, err := tree.NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tree.NewVerifier(s.VerifierKey())
}

func readSmall(path string) ([]byte, error) { return readSmallN(path, maxProofFile) }

// readSmallN reads a file of at most max bytes.
func readSmallN(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// readHead reads a signed head and verifies it with v, or only parses it
// if v is nil.
func readHead(path string, v *tree.Verifier) (tree.Head, error) {
	b, err := readSmall(path)
	if err != nil {
		return tree.Head{}, err
	}
	if v == nil {
		return tree.ParseHead(b)
	}
	return v.Verify(b)
}

// readJSON decodes a proof file strictly: one JSON object, no unknown
// fields.
func readJSON(path string, v any) error {
	b, err := readSmall(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: more than one JSON value", path)
	}
	return nil
}

// coreClient reads a running core's journal over its HTTP API: Pebble's
// lock keeps a running core's journal from being opened by another process.
type coreClient struct {
	base  string
	token string
	http  *http.Client
}

func newCoreClient(base, caFile, tokenFile string) (*coreClient, error) {
	hc, err := coreHTTP(base, caFile, 60*time.Second)
	if err != nil {
		return nil, err
	}
	c := &coreClient{base: strings.TrimRight(base, "/"), http: hc}
	if tokenFile != "" {
		tok, err := readToken(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--stream-token-file: %w", err)
		}
		c.token = tok
	}
	return c, nil
}

func (c *coreClient) get(path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxProofFile))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

// headView is what GET /v1/journal/head answers, in part.
type headView struct {
	SignedHead string `json:"signed_head"`
}

// journalSource is where a read command gets its journal: the data
// directory, or a running core's API.
type journalSource struct {
	dir, coreURL, coreCA, tokenFile string
}

func (s *journalSource) flags(cmd *cobra.Command, token bool) {
	dataFlag(cmd, &s.dir)
	cmd.Flags().StringVar(&s.coreURL, "core", "", "a running core's API (http://host:port or https://): read its journal there, which a running core keeps locked")
	cmd.Flags().StringVar(&s.coreCA, "core-ca", "", "with an https:// --core: the CA certificate (PEM) its certificate is checked against")
	if token {
		cmd.Flags().StringVar(&s.tokenFile, "stream-token-file", "", "with --core: the journal stream token (the core's secrets directory, CORE-DATA.secrets/stream.token); a proof carries the entry")
	}
}

// open opens the data directory's journal, saying what to do when a
// running core holds it.
func (s *journalSource) open() (*journal.Journal, error) {
	j, err := openJournal(s.dir)
	if err != nil && strings.Contains(err.Error(), "lock") {
		return nil, fmt.Errorf("%w (is a core running on %s? read its journal with --core URL)", err, s.dir)
	}
	return j, err
}

func writeIndented(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func newJournalProofCmds() []*cobra.Command {
	var headSrc journalSource
	var headSecrets string
	head := &cobra.Command{
		Use:   "head",
		Short: "print the journal's signed tree head (a C2SP checkpoint), after checking the tree against every entry: save it to check the journal against later",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if headSrc.coreURL != "" {
				c, err := newCoreClient(headSrc.coreURL, headSrc.coreCA, "")
				if err != nil {
					return err
				}
				var v headView
				if err := c.get("/v1/journal/head", nil, &v); err != nil {
					return err
				}
				if _, err := tree.ParseHead([]byte(v.SignedHead)); err != nil {
					return fmt.Errorf("the core's head: %w", err)
				}
				_, err = io.WriteString(cmd.OutOrStdout(), v.SignedHead)
				return err
			}
			s, err := core.LoadHeadSignerIn(headSecrets, headSrc.dir)
			if err != nil {
				return err
			}
			j, err := headSrc.open()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer j.Close()
			// A head is the log's word: sign only a tree checked
			// against every entry (the core checks it at start).
			if err := j.Scan(1, func(journal.Entry) error { return nil }); err != nil {
				var be *journal.BadEntryError
				if errors.As(err, &be) {
					fmt.Fprintf(cmd.OutOrStdout(), "journal BAD at entry %d: %s; no head signed\n", be.Seq, be.Reason)
				}
				return &exitError{code: 2, err: err}
			}
			note, err := s.Sign(j.TreeHead())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(note)
			return err
		},
	}
	headSrc.flags(head, false)
	secretsFlag(head, &headSecrets)

	var keyDir, keySecrets string
	key := &cobra.Command{
		Use:   "key",
		Short: "print the verifier key of the journal's heads, to give to auditors and witnesses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := core.LoadHeadSignerIn(keySecrets, keyDir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), s.VerifierKey())
			return nil
		},
	}
	dataFlag(key, &keyDir)
	secretsFlag(key, &keySecrets)

	var proveSrc journalSource
	var seq, size uint64
	prove := &cobra.Command{
		Use:   "prove",
		Short: "print the inclusion proof of entry --seq in the tree of --size entries (default: the journal's size), as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seq == 0 {
				return errors.New("--seq must be a sequence number >= 1")
			}
			var p *journal.InclusionProof
			if proveSrc.coreURL != "" {
				c, err := newCoreClient(proveSrc.coreURL, proveSrc.coreCA, proveSrc.tokenFile)
				if err != nil {
					return err
				}
				q := url.Values{"seq": {strconv.FormatUint(seq, 10)}}
				if size != 0 {
					q.Set("size", strconv.FormatUint(size, 10))
				}
				p = new(journal.InclusionProof)
				if err := c.get("/v1/journal/proof", q, p); err != nil {
					return err
				}
			} else {
				j, err := proveSrc.open()
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				defer j.Close()
				sz := size
				if sz == 0 {
					sz = j.TreeHead().Size
				}
				if p, err = j.InclusionProof(seq, sz); err != nil {
					return err
				}
			}
			return writeIndented(cmd.OutOrStdout(), p)
		},
	}
	proveSrc.flags(prove, true)
	prove.Flags().Uint64Var(&seq, "seq", 0, "the entry")
	prove.Flags().Uint64Var(&size, "size", 0, "the tree's size, a head's (default: the journal's now)")

	var consSrc journalSource
	var from, to uint64
	consistency := &cobra.Command{
		Use:   "consistency",
		Short: "print the consistency proof from the tree of --from entries to the tree of --to (default: the journal's size), as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p *tree.ConsistencyProof
			if consSrc.coreURL != "" {
				c, err := newCoreClient(consSrc.coreURL, consSrc.coreCA, "")
				if err != nil {
					return err
				}
				q := url.Values{"from": {strconv.FormatUint(from, 10)}}
				if to != 0 {
					q.Set("to", strconv.FormatUint(to, 10))
				}
				p = new(tree.ConsistencyProof)
				if err := c.get("/v1/journal/consistency", q, p); err != nil {
					return err
				}
			} else {
				j, err := consSrc.open()
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				defer j.Close()
				end := to
				if end == 0 {
					end = j.TreeHead().Size
				}
				if p, err = j.ConsistencyProof(from, end); err != nil {
					return err
				}
			}
			return writeIndented(cmd.OutOrStdout(), p)
		},
	}
	consSrc.flags(consistency, false)
	consistency.Flags().Uint64Var(&from, "from", 0, "the older tree's size (an older head's)")
	consistency.Flags().Uint64Var(&to, "to", 0, "the newer tree's size (default: the journal's now)")

	var headPath, proofPath, pubkey string
	checkProof := &cobra.Command{
		Use:   "check-proof",
		Short: "verify an inclusion proof against a signed head: needs only the proof, the head and the public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			v, err := optionalVerifier(pubkey)
			if err != nil {
				return err
			}
			h, err := readHead(headPath, v)
			if err != nil {
				fmt.Fprintf(w, "head REFUSED: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			var p journal.InclusionProof
			if err := readJSON(proofPath, &p); err != nil {
				return err
			}
			if err := p.Verify(h); err != nil {
				fmt.Fprintf(w, "proof BAD: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(w, "proof OK: entry %d (hash %s) is entry %d of the %d in the head of %s (root %s)\n", p.Seq, p.EntryHash, p.Seq, h.Size, h.Origin, h.Root)
			if p.Entry != nil {
				e, _ := journal.Decode(p.Entry)
				fmt.Fprintf(w, "entry %d: %s at %s\n", e.Seq, core.Kind(e.Kind), time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano))
			}
			if v == nil {
				fmt.Fprintln(w, "the head's signature was NOT checked: give --pubkey")
			}
			return nil
		},
	}
	checkProof.Flags().StringVar(&headPath, "head", "", "the signed head (kinko journal head)")
	checkProof.Flags().StringVar(&proofPath, "proof", "", "the inclusion proof (kinko journal prove)")
	checkProof.Flags().StringVar(&pubkey, "pubkey", "", "the verifier key of the heads (kinko journal key)")
	checkProof.MarkFlagRequired("head")
	checkProof.MarkFlagRequired("proof")

	var oldPath, newPath, consPath, consKey string
	checkCons := &cobra.Command{
		Use:   "check-consistency",
		Short: "verify that a newer signed head extends an older one: needs only the two heads, the proof and the public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			v, err := optionalVerifier(consKey)
			if err != nil {
				return err
			}
			var heads [2]tree.Head
			for i, path := range []string{oldPath, newPath} {
				if heads[i], err = readHead(path, v); err != nil {
					fmt.Fprintf(w, "head %s REFUSED: %v\n", path, err)
					return &exitError{code: 2, err: err}
				}
			}
			var p tree.ConsistencyProof
			if err := readJSON(consPath, &p); err != nil {
				return err
			}
			if err := p.Verify(heads[0], heads[1]); err != nil {
				fmt.Fprintf(w, "proof BAD: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(w, "proof OK: the head of %s at %d entries (root %s) extends the one at %d (root %s) unchanged\n", heads[1].Origin, heads[1].Size, heads[1].Root, heads[0].Size, heads[0].Root)
			if v == nil {
				fmt.Fprintln(w, "the heads' signatures were NOT checked: give --pubkey")
			}
			return nil
		},
	}
	checkCons.Flags().StringVar(&oldPath, "old", "", "the older signed head")
	checkCons.Flags().StringVar(&newPath, "new", "", "the newer signed head")
	checkCons.Flags().StringVar(&consPath, "proof", "", "the consistency proof (kinko journal consistency)")
	checkCons.Flags().StringVar(&consKey, "pubkey", "", "the verifier key of the heads (kinko journal key)")
	for _, f := range []string{"old", "new", "proof"} {
		checkCons.MarkFlagRequired(f)
	}
	return []*cobra.Command{head, key, prove, consistency, checkProof, checkCons}
}

func optionalVerifier(path string) (*tree.Verifier, error) {
	if path == "" {
		return nil, nil
	}
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	v, err := tree.NewVerifier(string(b))
	if err != nil {
		return nil, fmt.Errorf("--pubkey %s: %w", path, err)
	}
	return v, nil
}

// secretsFlag is --secrets of the commands that read the core's head key
// on its host.
func secretsFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "secrets", "", "the core's secrets directory, where the head key is (default DATA.secrets; the core's --secrets)")
}
