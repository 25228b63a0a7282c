package jobrun

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// deliveredByTerminal says whether the terminal has given the command s
// already: Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT) go to the terminal's whole
// foreground process group, the command included, when etlhub run is in
// it. Forwarding those as well would deliver them twice (and a second
// SIGINT means "exit now" to many programs). Every other signal, and these
// when they come from kill(1), a supervisor or cron, is forwarded.
func deliveredByTerminal(s os.Signal) bool {
	if s != syscall.SIGINT && s != syscall.SIGQUIT {
		return false
	}
	me := syscall.Getpgrp()
	for _, fd := range []int{0, 1, 2} {
		if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil {
			return fg == me
		}
	}
	return false
}
