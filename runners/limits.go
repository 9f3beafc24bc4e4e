package runners

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are the runner owner's caps on each job; a zero field sets no cap.
type Limits struct {
	// Memory is the most RAM, in bytes, the job's processes may use together (swap is not
	// allowed on top). Past it the kernel's OOM killer ends the job.
	Memory int64
	// CPUs is how many cores' worth of CPU time the job may use; fractions are allowed.
	CPUs float64
	// PIDs is the most processes and threads the job may have at once.
	PIDs int
}

func (l Limits) String() string {
	var s []string
	if l.Memory > 0 {
		s = append(s, "memory "+FormatSize(l.Memory))
	}
	if l.CPUs > 0 {
		s = append(s, "cpus "+strconv.FormatFloat(l.CPUs, 'g', -1, 64))
	}
	if l.PIDs > 0 {
		s = append(s, "pids "+strconv.Itoa(l.PIDs))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// ParseSize reads a byte size such as "4G", "512MiB", "1.5g" or "1048576". K, M, G and T
// are powers of 1024, with or without a trailing "i" and "B".
func ParseSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := 1.0
	unit := strings.TrimLeft(num, "0123456789.")
	num = strings.TrimSpace(num[:len(num)-len(unit)])
	u := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(unit)), "B"), "I")
	if i := strings.Index("KMGT", u); u != "" && (len(u) != 1 || i < 0) {
		return 0, fmt.Errorf("size %q: unknown unit %q (use K, M, G or T)", s, unit)
	} else if u != "" {
		mult = math.Pow(1024, float64(i+1))
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want a number of bytes such as 512M or 4G", s)
	}
	return int64(v * mult), nil
}

// FormatSize writes a byte size the way ParseSize reads it back, in the largest whole unit.
func FormatSize(n int64) string {
	for i := 4; i > 0; i-- {
		if d := int64(1) << (10 * i); n >= d && n%d == 0 {
			return strconv.FormatInt(n/d, 10) + string("KMGT"[i-1]) + "iB"
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// enforcer applies Limits to every job by the strongest means the machine allows: a cgroup
// per job when the runner can create one (cgroup v2 or v1; as root, or in a cgroup delegated
// to it), else what an unprivileged process can do (CPU affinity, RLIMIT_NPROC).
type enforcer struct {
	lim  Limits
	cg   *cgroups // nil without a usable cgroup
	wrap []string // unprivileged fallback: a prlimit and taskset command line to prefix steps with
	// how says how each limit is enforced, for the runner's startup log; unenforced
	// lists those that are not.
	how        []string
	unenforced []string
}

// newEnforcer works out how to apply lim on this machine.
func newEnforcer(lim Limits) *enforcer {
	e := &enforcer{lim: lim}
	if lim == (Limits{}) {
		return e
	}
	var need, where []string
	for i, on := range []bool{lim.Memory > 0, lim.CPUs > 0, lim.PIDs > 0} {
		if on {
			need = append(need, []string{"memory", "cpu", "pids"}[i])
		}
	}
	cg, err := findCgroups(need)
	if err == nil {
		e.cg = cg
		for _, n := range need {
			if !slices.Contains(where, cg.parent[n]) {
				where = append(where, cg.parent[n])
			}
		}
		if lim.Memory > 0 {
			e.how = append(e.how, fmt.Sprintf("memory %s (cgroup %s; OOM-killed past it)", FormatSize(lim.Memory), cg.version()))
		}
		if lim.CPUs > 0 {
			e.how = append(e.how, fmt.Sprintf("cpus %g (cgroup %s CPU quota)", lim.CPUs, cg.version()))
		}
		if lim.PIDs > 0 {
			e.how = append(e.how, fmt.Sprintf("pids %d (cgroup %s pids.max)", lim.PIDs, cg.version()))
		}
		e.how = append(e.how, "job cgroups in "+strings.Join(where, ", "))
		return e
	}
	e.fallback(fmt.Sprintf("no cgroup this runner can create (%v); run it as root or in a delegated cgroup (systemd: Delegate=yes)", err))
	return e
}

// fallback enforces what an unprivileged process can, and lists the rest, saying why.
func (e *enforcer) fallback(why string) {
	lim := e.lim
	if lim.Memory > 0 {
		// RLIMIT_AS would be the unprivileged way, but the CUDA driver reserves far more
		// address space than any job uses, so it would fail every GPU job.
		e.unenforced = append(e.unenforced, "memory: "+why)
	}
	if lim.CPUs > 0 {
		var set unix.CPUSet
		taskset, terr := exec.LookPath("taskset")
		if terr == nil && unix.SchedGetaffinity(0, &set) == nil {
			n := int(math.Ceil(lim.CPUs))
			var cpus []string
			for c := 0; c < 1024 && len(cpus) < n; c++ {
				if set.IsSet(c) {
					cpus = append(cpus, strconv.Itoa(c))
				}
			}
			e.wrap = append(e.wrap, taskset, "-c", strings.Join(cpus, ","))
			e.how = append(e.how, fmt.Sprintf("cpus %d (CPU affinity to cores %s with taskset; a job may widen it)", len(cpus), strings.Join(cpus, ",")))
		} else {
			e.unenforced = append(e.unenforced, "cpus: "+why+", and taskset (util-linux) is not usable")
		}
	}
	if lim.PIDs > 0 {
		prlimit, perr := exec.LookPath("prlimit")
		switch {
		case perr != nil:
			e.unenforced = append(e.unenforced, "pids: "+why+", and prlimit (util-linux) is not installed")
		case os.Geteuid() == 0:
			e.unenforced = append(e.unenforced, "pids: "+why+"; RLIMIT_NPROC does not bind root")
		default:
			e.wrap = append(e.wrap, prlimit, fmt.Sprintf("--nproc=%d", lim.PIDs), "--")
			e.how = append(e.how, fmt.Sprintf("pids %d (RLIMIT_NPROC: counts every process of uid %d, not only the job's)", lim.PIDs, os.Geteuid()))
		}
	}
}

// job makes the limits of one job: a fresh cgroup, or the fallback wrapper. uid is the
// user the steps run as (-1 for the runner's own).
func (e *enforcer) job(name string, uid int) (*jobCgroup, error) {
	if e.cg == nil {
		return &jobCgroup{wrap: e.wrap}, nil
	}
	return e.cg.create(name, e.lim, uid)
}

// cgroups is where job cgroups are made: a directory per controller (one directory for all
// on cgroup v2).
type cgroups struct {
	v2     bool
	parent map[string]string // controller → directory
}

func (c *cgroups) version() string {
	if c.v2 {
		return "v2"
	}
	return "v1"
}

// mounts reads the cgroup mounts and this process's cgroups: the cgroup2 mount and path,
// and each v1 controller's mount and path.
func mounts() (v2mnt, v2path string, v1mnt, v1path map[string]string, err error) {
	v1mnt, v1path = map[string]string{}, map[string]string{}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", nil, nil, err
	}
	for _, l := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			v2mnt = f[4]
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				v1mnt[o] = f[4]
			}
		}
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", nil, nil, err
	}
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2path = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1path[c] = parts[2]
		}
	}
	return v2mnt, v2path, v1mnt, v1path, nil
}

// findCgroups finds where this runner may create cgroups with the controllers in need:
// under cgroup v2 in its own cgroup (moving itself into a leaf, as a delegated cgroup
// requires) or, as root, in a gradforge-runner cgroup at the top; else under cgroup v1.
func findCgroups(need []string) (*cgroups, error) {
	v2mnt, v2path, v1mnt, v1path, err := mounts()
	if err != nil {
		return nil, err
	}
	var errs []error
	if v2mnt != "" {
		dir, err := delegateV2(v2mnt, v2path, need)
		if err == nil {
			c := &cgroups{v2: true, parent: map[string]string{}}
			for _, n := range need {
				c.parent[n] = dir
			}
			return c, nil
		}
		errs = append(errs, fmt.Errorf("cgroup v2: %w", err))
	}
	c := &cgroups{parent: map[string]string{}}
	for _, n := range need {
		mnt, ok := v1mnt[n]
		if !ok {
			errs = append(errs, fmt.Errorf("cgroup v1: no %s controller mounted", n))
			return nil, errors.Join(errs...)
		}
		dir := filepath.Join(mnt, v1path[n])
		if err := probeDir(dir); err != nil {
			if dir = mnt; os.Geteuid() != 0 || probeDir(dir) != nil {
				errs = append(errs, fmt.Errorf("cgroup v1 %s: %w", n, err))
				return nil, errors.Join(errs...)
			}
		}
		c.parent[n] = dir
	}
	return c, nil
}

// probeDir checks that a cgroup can be made in dir.
func probeDir(dir string) error {
	p := filepath.Join(dir, fmt.Sprintf("gradforge-probe-%d", os.Getpid()))
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	return os.Remove(p)
}

// delegateV2 returns a cgroup v2 directory whose children get the controllers in need.
// cgroup v2 lets only cgroups without processes hand controllers to children, so the runner
// first moves itself into a "runner" leaf of its own cgroup.
func delegateV2(mnt, self string, need []string) (string, error) {
	ctl := "+" + strings.Join(need, " +")
	enable := func(dir string) error {
		have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return err
		}
		for _, n := range need {
			if !slices.Contains(strings.Fields(string(have)), n) {
				return fmt.Errorf("%s: the %s controller is not delegated to it (it has %q)", dir, n, strings.TrimSpace(string(have)))
			}
		}
		return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(ctl), 0)
	}
	own := filepath.Join(mnt, self)
	err := enable(own)
	if err != nil && errors.Is(err, syscall.EBUSY) {
		leaf := filepath.Join(own, "runner")
		if err = os.Mkdir(leaf, 0o755); err == nil || errors.Is(err, os.ErrExist) {
			if err = os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err == nil {
				if err = enable(own); err != nil {
					// Other processes share the cgroup: it was not delegated to the runner alone.
					os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
					os.Remove(leaf)
				}
			}
		}
	}
	if err == nil {
		return own, nil
	}
	if os.Geteuid() != 0 || own == mnt {
		return "", err
	}
	top := filepath.Join(mnt, "gradforge-runner")
	if terr := enable(mnt); terr != nil {
		return "", fmt.Errorf("%w; at the top: %w", err, terr)
	}
	if terr := os.Mkdir(top, 0o755); terr != nil && !errors.Is(terr, os.ErrExist) {
		return "", fmt.Errorf("%w; at the top: %w", err, terr)
	}
	if terr := enable(top); terr != nil {
		return "", fmt.Errorf("%w; at the top: %w", err, terr)
	}
	return top, nil
}

// jobCgroup is one job's cgroup (dirs empty when the runner has none, and wrap prefixes the
// unprivileged fallback).
type jobCgroup struct {
	v2   bool
	dirs map[string]string // controller → this job's directory
	fd   *os.File          // v2: the directory, so steps start inside it (CLONE_INTO_CGROUP)
	wrap []string
}

func writeFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}

// create makes a job's cgroup with the limits set. uid ≥ 0 may move itself into it (cgroup
// v1 steps enter by writing their own pid).
func (c *cgroups) create(name string, lim Limits, uid int) (j *jobCgroup, err error) {
	j = &jobCgroup{v2: c.v2, dirs: map[string]string{}}
	defer func() {
		if err != nil {
			j.close()
			err = fmt.Errorf("job cgroup %s: %w", name, err)
		}
	}()
	for ctl, parent := range c.parent {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) { // v2: one dir for all
			return j, err
		}
		j.dirs[ctl] = dir
	}
	period := 100000
	quota := strconv.Itoa(int(math.Ceil(lim.CPUs * float64(period))))
	if c.v2 {
		dir := j.unique()[0]
		if lim.Memory > 0 {
			if err := writeFile(dir, "memory.max", strconv.FormatInt(lim.Memory, 10)); err != nil {
				return j, err
			}
			writeFile(dir, "memory.swap.max", "0")  // absent without swap accounting
			writeFile(dir, "memory.oom.group", "1") // an OOM kill ends the whole job, not one worker
		}
		if lim.CPUs > 0 {
			if err := writeFile(dir, "cpu.max", fmt.Sprintf("%s %d", quota, period)); err != nil {
				return j, err
			}
		}
		if lim.PIDs > 0 {
			if err := writeFile(dir, "pids.max", strconv.Itoa(lim.PIDs)); err != nil {
				return j, err
			}
		}
		if j.fd, err = os.Open(dir); err != nil {
			return j, err
		}
		return j, nil
	}
	if d := j.dirs["memory"]; d != "" {
		if err := writeFile(d, "memory.limit_in_bytes", strconv.FormatInt(lim.Memory, 10)); err != nil {
			return j, err
		}
		writeFile(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(lim.Memory, 10)) // absent without swap accounting
	}
	if d := j.dirs["cpu"]; d != "" {
		if err := writeFile(d, "cpu.cfs_period_us", strconv.Itoa(period)); err != nil {
			return j, err
		}
		if err := writeFile(d, "cpu.cfs_quota_us", quota); err != nil {
			return j, err
		}
	}
	if d := j.dirs["pids"]; d != "" {
		if err := writeFile(d, "pids.max", strconv.Itoa(lim.PIDs)); err != nil {
			return j, err
		}
	}
	if uid >= 0 {
		for _, d := range j.unique() {
			if err := os.Chown(filepath.Join(d, "cgroup.procs"), uid, uid); err != nil {
				return j, err
			}
		}
	}
	return j, nil
}

// command puts a step's command line under the job's limits: on cgroup v2 the process is
// created inside the cgroup; on v1 a shell moves itself in before it runs the step.
func (j *jobCgroup) command(args []string) *exec.Cmd {
	if len(j.wrap) > 0 {
		args = append(append([]string{}, j.wrap...), args...)
	}
	if !j.v2 && len(j.dirs) > 0 {
		enter := []string{"/bin/sh", "-c", `while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"`, "gradforge-cgroup"}
		for _, d := range j.unique() {
			enter = append(enter, filepath.Join(d, "cgroup.procs"))
		}
		args = append(append(enter, "--"), args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if j.fd != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(j.fd.Fd())
	}
	return cmd
}

// unique lists the job's cgroup directories once each (on v2 every controller shares one).
func (j *jobCgroup) unique() []string {
	var out []string
	for _, d := range j.dirs {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// watchOOM kills the whole job as soon as the kernel OOM-kills any of its processes after
// the count since (a worker killed alone could leave its parent waiting forever), until the
// returned stop is called.
func (j *jobCgroup) watchOOM(since int64) (stop func()) {
	if j.dirs["memory"] == "" {
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if j.oomKills() > since {
					j.kill()
					return
				}
			}
		}
	}()
	return func() { close(done); <-exited }
}

// reapStale removes job cgroups left by runners that died (kill -9), killing what still
// runs in them.
func (c *cgroups) reapStale(log *slog.Logger) {
	for _, parent := range c.parent {
		dirs, _ := filepath.Glob(filepath.Join(parent, "gradforge-job-*"))
		for _, d := range dirs {
			var pid int
			fmt.Sscanf(filepath.Base(d), "gradforge-job-%d-", &pid)
			if pid == os.Getpid() || pid > 0 && syscall.Kill(pid, 0) == nil {
				continue // a live runner's job
			}
			log.Warn("removing a job cgroup left by a runner that died", "cgroup", d)
			(&jobCgroup{v2: c.v2, dirs: map[string]string{"": d}}).close()
		}
	}
}

// oomKills counts the job's processes the kernel killed for memory so far.
func (j *jobCgroup) oomKills() int64 {
	d, file := j.dirs["memory"], "memory.oom_control"
	if j.v2 {
		file = "memory.events"
	}
	if d == "" {
		return 0
	}
	f, err := os.Open(filepath.Join(d, file))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if n, ok := strings.CutPrefix(s.Text(), "oom_kill "); ok {
			v, _ := strconv.ParseInt(n, 10, 64)
			return v
		}
	}
	return 0
}

// kill ends every process in the job's cgroup, including those that left the step's
// process group.
func (j *jobCgroup) kill() {
	for _, d := range j.unique() {
		if j.v2 && os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0) == nil {
			continue
		}
		for range 100 { // processes may fork while they are being killed
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			pids := strings.Fields(string(b))
			if err != nil || len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// close kills what is left of the job and removes its cgroup.
func (j *jobCgroup) close() {
	if j.fd != nil {
		j.fd.Close()
	}
	j.kill()
	for _, d := range j.unique() {
		// A killed process leaves its cgroup a moment after it dies.
		for i := 0; os.Remove(d) != nil && i < 200; i++ {
			if _, err := os.Stat(d); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
