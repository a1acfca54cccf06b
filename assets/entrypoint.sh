#!/bin/sh
# Entrypoint of the nixbuilder builder container (POSIX sh: it runs on the
# nixos/nix image and on Debian with nix-bin and openssh-server alike).
#
# On every start it writes the builder's nix.conf from what the container
# can do, creates the persistent host key on first start only, and then
# replaces itself with sshd in the foreground. It never writes to stdout.
#
# Environment (set by nixbuilder-setup on the container):
#   NIXBUILDER_SANDBOX=false       last rung of the privilege ladder: the
#                                  engine allows no sandbox, build without it
#   NIXBUILDER_SUBSTITUTERS=...    substituters; set it empty for an offline
#                                  builder (unset: Nix's default cache)
#   NIXBUILDER_EXTRA_PLATFORMS=... systems to advertise instead of those
#                                  found through binfmt_misc ("none": none)
#   NIXBUILDER_SANDBOX_SHELL=PATH  static shell for /bin/sh in the sandbox
#                                  when Nix has none built in
set -eu

state=/var/lib/nixbuilder
conf_dir=${NIX_CONF_DIR:-/etc/nix}

log() {
	echo "nixbuilder: $*" >&2
}

export PATH="/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/nix/var/nix/profiles/default/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# sshd's privilege separation needs these; /run may be a fresh tmpfs.
mkdir -p /run/sshd /var/empty "$state" "$conf_dir"
chmod 0755 /run/sshd /var/empty
chmod 0700 "$state"

# --- host key: created once, kept in the state volume -----------------
key="$state/ssh_host_ed25519_key"
if [ ! -s "$key" ]; then
	if ! command -v ssh-keygen >/dev/null 2>&1; then
		log "ssh-keygen not found; the image needs OpenSSH"
		exit 1
	fi
	rm -f "$key" "$key.pub"
	ssh-keygen -q -t ed25519 -N '' -C nixbuilder -f "$key" >/dev/null </dev/null
	log "generated host key $key"
fi
chmod 0600 "$key"
if [ ! -e "$state/authorized_keys" ]; then
	: >"$state/authorized_keys"
fi
chmod 0600 "$state/authorized_keys"

# --- marker: a token only builds on this builder can read ----------------
# Mapped into every build sandbox at /nixbuilder-marker (and linked there
# for unsandboxed builds), so the host's probe build proves where it ran.
marker="$state/marker"
if [ ! -s "$marker" ]; then
	read -r token </proc/sys/kernel/random/uuid
	echo "nixbuilder-$token" >"$marker"
fi
chmod 0644 "$marker"
ln -sfn "$marker" /nixbuilder-marker 2>/dev/null || true

# --- platforms this container can run besides its own ------------------
native=$(uname -m)
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/status" ] && command -v mount >/dev/null 2>&1; then
	# Reading the handlers needs binfmt_misc mounted; a refused mount only
	# means no emulation is detected.
	mount -t binfmt_misc binfmt_misc "$binfmt" >/dev/null 2>&1 || true
fi

# handler NAME: the binfmt_misc handler NAME is registered and enabled.
handler() {
	[ -r "$binfmt/$1" ] || return 1
	read -r first <"$binfmt/$1" || return 1
	[ "$first" = enabled ]
}

extra=
if [ -n "${NIXBUILDER_EXTRA_PLATFORMS+set}" ]; then
	extra=$NIXBUILDER_EXTRA_PLATFORMS
	[ "$extra" = none ] && extra=
else
	case $native in
	aarch64 | arm64)
		if handler rosetta || handler qemu-x86_64; then
			extra=x86_64-linux
		fi
		;;
	x86_64 | amd64)
		if handler qemu-aarch64; then
			extra=aarch64-linux
		fi
		;;
	esac
fi

# --- sandbox -----------------------------------------------------------
sandbox=true
case ${NIXBUILDER_SANDBOX:-true} in
false | 0 | no | off)
	sandbox=false
	log "WARNING: the Nix sandbox is OFF (NIXBUILDER_SANDBOX=$NIXBUILDER_SANDBOX): builds are not isolated"
	;;
esac

# A Nix built with a sandbox shell lists /bin/sh=... in its default
# sandbox-paths (nixos/nix); Debian's nix-bin has none, and derivations
# with builder /bin/sh then fail, so lend it a static busybox.
sandbox_shell=
if [ "$sandbox" = true ]; then
	defaults=$(NIX_CONF_DIR=/nonexistent NIX_USER_CONF_FILES=/nonexistent \
		nix --extra-experimental-features nix-command show-config 2>/dev/null || true)
	case $defaults in
	*"sandbox-paths = "*"/bin/sh="*) ;;
	*)
		for candidate in ${NIXBUILDER_SANDBOX_SHELL:-} /bin/busybox /usr/bin/busybox; do
			if [ -x "$candidate" ]; then
				sandbox_shell=$candidate
				break
			fi
		done
		if [ -z "$sandbox_shell" ]; then
			log "warning: Nix has no sandbox shell and no static busybox was found; builders using /bin/sh will fail"
		fi
		;;
	esac
fi

# Nix finds CA certificates at /etc/ssl/certs/ca-certificates.crt when no
# environment variable names them (sessions over ssh have none); nixos/nix
# only has ca-bundle.crt. (Nix 2.8 has no ssl-cert-file setting.)
certs=/etc/ssl/certs
if [ ! -e "$certs/ca-certificates.crt" ] && [ -e "$certs/ca-bundle.crt" ]; then
	ln -s ca-bundle.crt "$certs/ca-certificates.crt" 2>/dev/null || true
fi

# --- nix.conf ------------------------------------------------------------
tmp="$conf_dir/nix.conf.nixbuilder.$$"
{
	echo "# Written by the nixbuilder entrypoint on every container start."
	echo "sandbox = $sandbox"
	# Fail instead of silently building unsandboxed: the privilege ladder
	# relies on a sandboxed probe build failing when the sandbox cannot work.
	echo "sandbox-fallback = false"
	echo "experimental-features = nix-command flakes"
	echo "trusted-users = root"
	echo "max-jobs = auto"
	echo "cores = 0"
	if grep -q '^nixbld:' /etc/group 2>/dev/null; then
		echo "build-users-group = nixbld"
	else
		echo "build-users-group ="
	fi
	if [ -n "$sandbox_shell" ]; then
		echo "sandbox-paths = /bin/sh=$sandbox_shell"
	fi
	echo "extra-sandbox-paths = /nixbuilder-marker=$marker"
	if [ -n "${NIXBUILDER_SUBSTITUTERS+set}" ]; then
		echo "substituters = $NIXBUILDER_SUBSTITUTERS"
	fi
	if [ -n "$extra" ]; then
		echo "extra-platforms = $extra"
		# Rosetta and QEMU do not emulate seccomp BPF reliably.
		echo "filter-syscalls = false"
	fi
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$conf_dir/nix.conf"

# --- sshd ----------------------------------------------------------------
sshd=$(command -v sshd || true)
if [ -z "$sshd" ]; then
	log "sshd not found on $PATH; the image needs OpenSSH's server"
	exit 1
fi
# sshd requires being started by its absolute path.
exec "$sshd" -D -e -f /etc/nixbuilder/sshd_config
