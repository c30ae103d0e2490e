package regtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
)

// btcd deletes a regtest chain's database at every start. A node that
// must keep its chain across restarts (kinko dev's) keeps it beside its
// data directory instead: its harness key in harness.key and every block
// of its best chain in blocks.dat (each block's length, 4 bytes big-endian,
// then its bytes), appended after each mining and at stop. At start the
// blocks are submitted again, in order, to the fresh node, which rebuilds
// the same chain with the same hashes; the mempool is not kept.

const (
	keyFile     = "harness.key"
	archiveFile = "blocks.dat"
	// maxArchivedBlock bounds one archived block read back.
	maxArchivedBlock = 4 << 20
)

// loadOrMakeKey returns the harness key kept in dir, making it if absent.
func loadOrMakeKey(dir string) (*btcec.PrivateKey, error) {
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := btcec.NewPrivateKey()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k.Serialize())+"\n"), 0o600); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("regtest: %s is not a hex private key", path)
	}
	k, _ := btcec.PrivKeyFromBytes(raw)
	return k, nil
}

// archived returns the number of blocks in the archive.
func (n *Node) archived() (int32, error) {
	f, err := os.Open(filepath.Join(n.dir, archiveFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var count int32
	err = readArchive(f, func([]byte) error { count++; return nil })
	return count, err
}

// readArchive calls fn with each archived block's bytes. A block cut
// short at the end (a crash while appending) ends the archive there.
func readArchive(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReader(r)
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			return err
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > maxArchivedBlock {
			return fmt.Errorf("regtest: archived block of %d bytes", size)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			if err == io.ErrUnexpectedEOF {
				return nil
			}
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
}

// restore submits the archived blocks to the fresh node, in order, and
// returns how many.
func (n *Node) restore(ctx context.Context) (int32, error) {
	f, err := os.Open(filepath.Join(n.dir, archiveFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var count int32
	err = readArchive(f, func(b []byte) error {
		blk, err := btcutil.NewBlockFromBytes(b)
		if err != nil {
			return fmt.Errorf("regtest: archived block %d: %w", count+1, err)
		}
		if err := n.RPC().SubmitBlock(blk, nil); err != nil {
			return fmt.Errorf("regtest: resubmit block %d: %w", count+1, err)
		}
		count++
		return ctx.Err()
	})
	if err != nil {
		return count, err
	}
	_, height, err := n.client.BestBlock(ctx)
	if err != nil {
		return count, err
	}
	if height != count {
		return count, fmt.Errorf("regtest: %d blocks resubmitted but the node is at height %d", count, height)
	}
	return count, nil
}

// Archive appends to the archive the best chain's blocks it lacks. Only a
// node started with Options.Keep has one.
func (n *Node) Archive(ctx context.Context) error {
	if !n.keep {
		return nil
	}
	n.archMu.Lock()
	defer n.archMu.Unlock()
	have, err := n.archived()
	if err != nil {
		return err
	}
	_, height, err := n.client.BestBlock(ctx)
	if err != nil {
		return err
	}
	if height <= have {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(n.dir, archiveFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for h := have + 1; h <= height; h++ {
		hash, err := n.client.BlockHash(ctx, h)
		if err != nil {
			f.Close()
			return err
		}
		b, err := n.client.Block(ctx, hash)
		if err != nil {
			f.Close()
			return err
		}
		var buf bytes.Buffer
		if err := b.Serialize(&buf); err != nil {
			f.Close()
			return err
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(buf.Len()))
		w.Write(hdr[:])
		w.Write(buf.Bytes())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// markSpent marks the harness's coins that blocks of the restored chain
// spend, so that SendTo does not pick them again.
func (n *Node) markSpent(ctx context.Context) error {
	_, height, err := n.client.BestBlock(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for h := int32(1); h <= height; h++ {
		hash, err := n.client.BlockHash(ctx, h)
		if err != nil {
			return err
		}
		b, err := n.client.Block(ctx, hash)
		if err != nil {
			return err
		}
		for _, tx := range b.Transactions[1:] {
			for _, in := range tx.TxIn {
				n.spent[in.PreviousOutPoint] = true
			}
		}
	}
	return nil
}
