package ci

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Worktree is the ref name that means "the files on disk" instead of a commit, so a developer
// can run a gate over uncommitted work: `gradforge gate lines --head WORKTREE`.
const Worktree = "WORKTREE"

// Repo is a git repository on disk. The gates read a commit's files from git objects
// (ls-tree and cat-file), never from a checkout, so judging a pull request never runs or even
// checks out its code: only the bytes of its files are read.
type Repo struct {
	Dir string // any folder inside the repository
}

// git runs one git command in the repository and returns its standard output.
func (r Repo) git(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = r.Dir
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return out.Bytes(), nil
}

// Resolve turns a ref (branch, tag, SHA, HEAD~1) into a full commit SHA.
func (r Repo) Resolve(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", errors.New("empty git ref")
	}
	if strings.HasPrefix(ref, "-") {
		return "", fmt.Errorf("bad git ref %q", ref)
	}
	out, err := r.git(ctx, nil, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("resolve %q: not a commit in %s", ref, r.Dir)
	}
	return strings.TrimSpace(string(out)), nil
}

// Parent returns the first parent of a commit, or "" for a root commit.
func (r Repo) Parent(ctx context.Context, sha string) (string, error) {
	out, err := r.git(ctx, nil, "rev-list", "--parents", "-n", "1", sha)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "", nil
	}
	return f[1], nil
}

// Changed reports whether any file under paths differs between two commits.
func (r Repo) Changed(ctx context.Context, base, head string, paths []string) (bool, error) {
	out, err := r.git(ctx, nil, append([]string{"diff", "--name-only", base, head, "--"}, paths...)...)
	if err != nil {
		return false, err
	}
	return len(bytes.TrimSpace(out)) > 0, nil
}

// Toplevel is the repository's root folder.
func (r Repo) Toplevel(ctx context.Context) (string, error) {
	out, err := r.git(ctx, nil, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Files returns the contents of the files under dir (a path relative to the repository root)
// at a commit, keyed by path, keeping only those for which keep is true. With sha ==
// Worktree it reads the files on disk instead (tracked or not, ignoring .git).
func (r Repo) Files(ctx context.Context, sha, dir string, keep func(path string) bool) (map[string][]byte, error) {
	if sha == Worktree {
		return r.worktreeFiles(dir, keep)
	}
	if sha == "" {
		return map[string][]byte{}, nil // the empty tree: a base with no parent
	}
	out, err := r.git(ctx, nil, "ls-tree", "-r", "-z", "--full-tree", sha, "--", dir)
	if err != nil {
		return nil, err
	}
	var paths, objs []string
	for _, ent := range bytes.Split(out, []byte{0}) {
		// "<mode> SP <type> SP <object> TAB <path>"
		meta, path, ok := bytes.Cut(ent, []byte{'\t'})
		if !ok {
			continue
		}
		f := strings.Fields(string(meta))
		if len(f) != 3 || f[1] != "blob" || f[0] == "120000" || !keep(string(path)) {
			continue // submodules, symlinks and files the caller does not want
		}
		paths, objs = append(paths, string(path)), append(objs, f[2])
	}
	blobs, err := r.blobs(ctx, objs)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", dir, short(sha), err)
	}
	files := make(map[string][]byte, len(paths))
	for i, p := range paths {
		files[p] = blobs[i]
	}
	return files, nil
}

// blobs reads many objects through one `git cat-file --batch`.
func (r Repo) blobs(ctx context.Context, objs []string) ([][]byte, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	out, err := r.git(ctx, strings.NewReader(strings.Join(objs, "\n")+"\n"), "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	rd := bufio.NewReader(bytes.NewReader(out))
	res := make([][]byte, 0, len(objs))
	for _, o := range objs {
		hdr, err := rd.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("cat-file header for %s: %w", o, err)
		}
		f := strings.Fields(hdr) // "<sha> <type> <size>" or "<sha> missing"
		if len(f) != 3 {
			return nil, fmt.Errorf("cat-file %s: %s", o, strings.TrimSpace(hdr))
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("cat-file %s: bad size %q", o, f[2])
		}
		b := make([]byte, n+1) // the content and its trailing newline
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, fmt.Errorf("cat-file %s: %w", o, err)
		}
		res = append(res, b[:n])
	}
	return res, nil
}

// worktreeFiles reads the files git would see under dir in the working tree: tracked ones
// and untracked ones that .gitignore does not exclude (so build outputs never count).
func (r Repo) worktreeFiles(dir string, keep func(string) bool) (map[string][]byte, error) {
	ctx := context.Background()
	top, err := r.Toplevel(ctx)
	if err != nil {
		return nil, err
	}
	paths, err := r.worktreePaths(ctx, top, dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, p := range paths {
		if !keep(p) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(top, filepath.FromSlash(p)))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted but not yet committed
		} else if err != nil {
			return nil, fmt.Errorf("read working tree: %w", err)
		}
		files[p] = b
	}
	return files, nil
}

// worktreePaths lists the tracked and unignored untracked files under dir ("" for all).
func (r Repo) worktreePaths(ctx context.Context, top, dir string) ([]string, error) {
	args := []string{"-C", top, "ls-files", "-z", "--cached", "--others", "--exclude-standard"}
	if dir != "" {
		args = append(args, "--", dir)
	}
	out, err := r.git(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	var paths []string
	seen := map[string]bool{}
	for _, p := range strings.Split(string(out), "\x00") {
		if p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// Export writes the tree of a commit into dst (created if missing) with `git archive`, so a
// gate can build that commit without touching the repository's own checkout or worktrees.
func (r Repo) Export(ctx context.Context, sha, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("export %s: %w", short(sha), err)
	}
	if sha == Worktree {
		top, err := r.Toplevel(ctx)
		if err != nil {
			return err
		}
		return r.copyTree(ctx, top, dst)
	}
	tarball, err := r.git(ctx, nil, "archive", "--format=tar", sha)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "tar", "-x", "-C", dst)
	cmd.Stdin = bytes.NewReader(tarball)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("export %s: tar: %v: %s", short(sha), err, out)
	}
	return nil
}

// copyTree copies the working tree's files that git sees (tracked, or untracked and not
// ignored) for builds of uncommitted work; ignored build outputs stay behind.
func (r Repo) copyTree(ctx context.Context, top, dst string) error {
	paths, err := r.worktreePaths(ctx, top, "")
	if err != nil {
		return err
	}
	for _, p := range paths {
		src := filepath.Join(top, filepath.FromSlash(p))
		st, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) || (err == nil && !st.Mode().IsRegular()) {
			continue
		} else if err != nil {
			return fmt.Errorf("copy working tree: %w", err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("copy working tree: %w", err)
		}
		out := filepath.Join(dst, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return fmt.Errorf("copy working tree: %w", err)
		}
		if err := os.WriteFile(out, b, st.Mode().Perm()); err != nil {
			return fmt.Errorf("copy working tree: %w", err)
		}
	}
	return nil
}

// short abbreviates a SHA for messages.
func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	if sha == "" {
		return "(empty tree)"
	}
	return sha
}
