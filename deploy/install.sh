#!/bin/sh
# Installs a fer-edge board package (made by scripts/package.sh) and its systemd service.
#
#   sudo ./install.sh                  on the board: install into /opt/fer-edge, check the board
#                                      config against this board's devices (also as the
#                                      service's unprivileged user would open them), enable and
#                                      start the service
#   ./install.sh --root /mnt/sd        into a board's root file system mounted here (an SD card
#                                      image being prepared on another machine): files and the
#                                      unit only, nothing run
#   sudo ./install.sh --uninstall      stop and disable the service, remove it and the installed
#                                      files but an edited board.toml (with --prefix/--root as
#                                      they were installed)
#
# Options: --prefix DIR (default /opt/fer-edge), --root DIR, --no-start (install and enable the
# service, but do not start it), --groups "G1 G2" (the service's groups, instead of those that
# own the configured devices, as check-config reports them, and for a device not there yet the
# group it usually has (video, i2c, spi, gpio) where the system has it; with --root, those of
# video, spi, i2c, gpio that the root's /etc/group has).
# An installed board.toml that differs from the package's is kept; the package's goes next to
# it as board.toml.new.
set -eu

prefix=/opt/fer-edge
root=""
start=1
uninstall=0
groups=""
groups_given=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    --groups) groups=$2; groups_given=1; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $prefix in /*) ;; *) echo "install.sh: --prefix must be absolute: $prefix" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
dest=$root$prefix
say() { printf 'install.sh: %s\n' "$*"; }
unit_dir=$root/etc/systemd/system

if [ $uninstall -eq 1 ]; then
  if [ -z "$root" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now fer-edge.service 2>/dev/null || true
  fi
  rm -f "$unit_dir/fer-edge.service" "$unit_dir/multi-user.target.wants/fer-edge.service"
  if [ -z "$root" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  # Only a directory this script installed: it holds fer-device and SHA256SUMS.
  if [ -f "$dest/SHA256SUMS" ] && [ -x "$dest/bin/fer-device" ]; then
    if [ -f "$dest/board.toml" ] &&
      ! (cd "$dest" && grep '  board.toml$' SHA256SUMS | sha256sum --quiet -c - >/dev/null 2>&1); then
      # An edited config is the user's work: everything else goes.
      find "$dest" -mindepth 1 -maxdepth 1 ! -name board.toml -exec rm -rf {} +
      say "removed $prefix but your edited $prefix/board.toml, and the fer-edge service"
    else
      rm -rf "${dest:?}"
      say "removed $prefix and the fer-edge service"
    fi
  else
    say "nothing of fer-edge at $prefix; removed the fer-edge service if it was there"
  fi
  exit 0
fi

# The package's files must be whole before anything is copied.
(cd "$here" && sha256sum --quiet -c SHA256SUMS) || { say "package damaged: SHA256SUMS does not match" >&2; exit 1; }

if [ -z "$root" ]; then
  # On the board: the binary must run here (right architecture) before anything is replaced.
  if ! "$here/bin/fer-device" --version >/dev/null 2>&1; then
    say "bin/fer-device does not run on this machine ($(uname -m)); this package is for $(cat "$here/TARGET")" >&2
    exit 1
  fi
fi

mkdir -p "$dest"
if [ -f "$dest/board.toml" ] && ! cmp -s "$dest/board.toml" "$here/board.toml"; then
  cp "$here/board.toml" "$dest/board.toml.new"
  say "kept your $prefix/board.toml; the package's is $prefix/board.toml.new"
else
  cp "$here/board.toml" "$dest/board.toml"
fi
rm -rf "$dest/bin.new" "$dest/models.new" "$dest/share.new"
cp -R "$here/bin" "$dest/bin.new"
cp -R "$here/models" "$dest/models.new"
cp -R "$here/share" "$dest/share.new"
for d in bin models share; do rm -rf "${dest:?}/$d" && mv "$dest/$d.new" "$dest/$d"; done
cp "$here/README.txt" "$here/SHA256SUMS" "$here/TARGET" "$here/fer-edge.service" "$here/install.sh" "$dest/"

if [ -z "$root" ]; then
  say "checking $prefix/board.toml on this board:"
  report=$(cd "$dest" && bin/fer-device check-config board.toml) || { printf '%s\n' "$report"; exit 1; }
  printf '%s\n' "$report"
  if [ $groups_given -eq 0 ]; then
    # The groups that own the camera, bus, GPIO and framebuffer nodes (not root's).
    # Those of devices not there yet (a camera plugged in later): the group such a device has
    # on Raspberry Pi OS and Jetson Linux, where this system has it.
    devices=$(printf '%s\n' "$report" | grep -E '^ +(camera|display|gpio) ')
    groups=$( (printf '%s\n' "$devices" | grep -o 'group [^)]*)' | sed 's/^group //; s/)$//'
      printf '%s\n' "$devices" | grep 'not found on this machine' | while read -r kind what _; do
        case "$kind $what" in
          camera*) g=video ;;
          "display ssd1306") g=i2c ;;
          "display SPI") g=spi ;;
          "display framebuffer") g=video ;;
          gpio*) g=gpio ;;
          *) continue ;;
        esac
        if grep -q "^$g:" /etc/group; then echo "$g"; fi
      done) | grep -vx root | sort -u | tr '\n' ' ')
  fi
elif [ $groups_given -eq 0 ]; then
  for g in video spi i2c gpio; do
    if grep -q "^$g:" "$root/etc/group" 2>/dev/null; then groups="$groups$g "; fi
  done
fi
groups=$(printf '%s' "$groups" | sed 's/ *$//')

if [ -z "$root" ] && command -v setpriv >/dev/null 2>&1 && getent passwd nobody >/dev/null 2>&1; then
  # What the service's own user will be able to open: check-config again as an unprivileged
  # user with just these groups (the service's DynamicUser has no other rights).
  if [ -n "$groups" ]; then set -- --groups "$(printf '%s' "$groups" | tr ' ' ,)"; else set -- --clear-groups; fi
  as_service=$(cd "$dest" && setpriv --reuid=nobody --regid="$(id -g nobody)" "$@" bin/fer-device check-config board.toml 2>&1) || true
  if printf '%s\n' "$as_service" | grep -q 'cannot open'; then
    printf '%s\n' "$as_service" | grep 'cannot open' >&2
    say "the service (groups: ${groups:-none}) will not be able to open the above: see the remedy in brackets" >&2
  else
    say "the service's user (groups: ${groups:-none}) can open every device that is present"
  fi
fi

mkdir -p "$unit_dir"
sed -e "s#@PREFIX@#$prefix#g" -e "s#@GROUPS@#$groups#g" "$here/fer-edge.service" |
  if [ -z "$groups" ]; then grep -v '^SupplementaryGroups='; else cat; fi >"$unit_dir/fer-edge.service"
say "installed $prefix (service groups: ${groups:-none}) and $unit_dir/fer-edge.service"

if [ -n "$root" ]; then
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf ../fer-edge.service "$root/etc/systemd/system/multi-user.target.wants/fer-edge.service"
  say "enabled: it starts when that root boots"
elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ $start -eq 1 ]; then
    # restart, not start: an upgrade must not leave the old binary running.
    systemctl enable fer-edge.service
    systemctl restart fer-edge.service
    systemctl --no-pager --lines=5 status fer-edge.service || true
  else
    systemctl enable fer-edge.service
  fi
  say "logs: journalctl -u fer-edge -f"
else
  say "no running systemd here: start it by hand: cd $prefix && bin/fer-device run --board board.toml"
fi
