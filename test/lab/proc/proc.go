// Package proc answers questions about processes of the lab's machine.
package proc

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Alive reports whether pid is a running process. A zombie (exited, not
// yet reaped: the lab's detached processes are re-parented to a PID 1 that
// may never reap them) is not alive.
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// the state follows the command name, which is in parentheses and may hold spaces
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	return len(f) == 0 || f[0] != "Z"
}
