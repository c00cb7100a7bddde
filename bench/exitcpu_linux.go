package bench

import (
	"syscall"
	"unsafe"
)

// waitExited blocks until the child pid has exited, without reaping it, so that its
// /proc/<pid>/stat can still be read (a zombie keeps its final utime and stime until its
// parent waits for it). The caller then reaps it with exec.Cmd.Wait. This is how Go's own
// os package waits on Linux (waitid with WNOWAIT).
func waitExited(pid int) error {
	const pPID, wExited, wNoWait = 1, 4, 0x01000000
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}
