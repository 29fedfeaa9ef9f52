"""weft's gdb extension: the fibers of a hub, and the stack of a suspended one.

Load it in gdb with `source scripts/weft-gdb.py` (or `gdb -x scripts/weft-gdb.py`,
or a line `source /path/to/weft-gdb.py` in ~/.gdbinit). It needs libweft's
debug info (the default debugoptimized build has it) and works on a live
process and on a core file, x86-64 only.

  info weft-fibers          the live fibers of the selected thread's hub: id,
                            name, state and what a suspended one waits on (the
                            lines weft::dump_fibers() prints)
  weft-bt ID|NAME [ARGS]    the backtrace of a suspended (or ready) fiber of
                            that hub; ARGS go to gdb's backtrace (`full`, a
                            count N for the N innermost frames)
  weft-fiber ID|NAME        make bt, frame, up, info locals... show that
                            fiber's stack, from frame #1 up (frame #0 stays
                            where the thread stopped); until `weft-fiber off`
                            or the program resumes

How a switched-out fiber is found: its FiberBase::context_ is the stack pointer
that weft_switch_context (runtime/context_switch.cpp, Boost.Context's fcontext
frame on x86-64) left, pointing at the saved frame
  0x00 MXCSR, x87 control word  0x08 r12  0x10 r13  0x18 r14  0x20 r15
  0x28 rbx  0x30 rbp  0x38 the address the fiber resumes at
and the fiber resumes with rsp = context_ + 0x40. A Python unwinder hands
these registers to gdb as the caller of frame #0, so gdb's own DWARF
unwinding takes the fiber's stack from there. No register of the process is
changed, which is why it also works on a core.
"""

import re
import struct

import gdb
import gdb.unwinder
from gdb.FrameDecorator import FrameDecorator

# weft::detail::FiberState, in declaration order.
_STATES = ("created", "ready", "running", "suspended", "dead")

# The saved fcontext frame: offsets of the registers it holds, and its size.
_RESUME_OFFSET = 0x38
_FRAME_SIZE = 0x40
_SAVED_REGISTERS = (
    ("r12", 0x08),
    ("r13", 0x10),
    ("r14", 0x18),
    ("r15", 0x20),
    ("rbx", 0x28),
    ("rbp", 0x30),
    ("rip", _RESUME_OFFSET),
)


# --- reading the hub -----------------------------------------------------------


def _hub():
    """The selected thread's weft::detail::HubCore (a gdb.Value)."""
    # Looked up as a symbol, not parsed as an expression: frame #0 is often in
    # C code (raise, epoll_wait), where `weft::detail::...` does not parse.
    symbol = gdb.lookup_global_symbol("weft::detail::this_thread_hub")
    if symbol is None:
        raise gdb.GdbError(
            "weft: no symbol weft::detail::this_thread_hub: is libweft loaded, with its debug info?"
        )
    try:
        hub = symbol.value(gdb.selected_frame()) if symbol.needs_frame else symbol.value()
    except gdb.error as error:
        raise gdb.GdbError("weft: cannot read weft::detail::this_thread_hub: %s" % error)
    if int(hub) == 0:
        raise gdb.GdbError("weft: the selected thread runs no hub")
    return hub.dereference()


def _base_offset(derived, base_marker):
    """Byte offset of the base class of `derived` whose name contains `base_marker`."""
    for field in derived.fields():
        if field.is_base_class and base_marker in str(field.type):
            return field.bitpos // 8
    raise gdb.GdbError("weft: %s has no base %s" % (derived, base_marker))


def _string(value):
    """A libstdc++ std::string, read without its pretty printer."""
    length = int(value["_M_string_length"])
    if length == 0:
        return ""
    data = int(value["_M_dataplus"]["_M_p"])
    text = gdb.selected_inferior().read_memory(data, length).tobytes()
    return text.decode("utf-8", "replace")


def _owned_string(unique_ptr):
    """The std::string a std::unique_ptr<std::string> owns, "" for none. With
    the default deleter a unique_ptr is one pointer."""
    target = unique_ptr.type.strip_typedefs().template_argument(0)
    pointer = gdb.Value(int(unique_ptr.address)).cast(target.pointer().pointer()).dereference()
    return _string(pointer.dereference()) if int(pointer) else ""


def _member(address, struct_type, name):
    """Field `name` of the `struct_type` at `address`. Read through a pointer to
    the field, not by dereferencing the object: a FiberBase is polymorphic, and
    gdb would look for the RTTI of each fiber's lambda type (and warn)."""
    field = struct_type[name]
    return gdb.Value(address + field.bitpos // 8).cast(field.type.pointer()).dereference()


class Fiber:
    """What gdb can tell of one weft::detail::FiberBase."""

    def __init__(self, address, fiber_type, running):
        def member(name):
            return _member(address, fiber_type, name)

        self.address = address
        self.id = int(member("id_"))
        self.name = _owned_string(member("name_")) or "-"
        state = int(member("state_"))
        self.state = _STATES[state] if 0 <= state < len(_STATES) else "?"
        reason = member("wait_reason_")
        self.wait_reason = reason.string() if int(reason) else ""
        self.context = int(member("context_"))
        self.running = running

    def line(self):
        """As HubCore::dump() writes it."""
        text = "#%d %s %s" % (self.id, self.name, self.state)
        if self.state == "suspended":
            text += " waiting on " + self.wait_reason
        return text


def _live_fibers():
    hub = _hub()
    fiber_type = gdb.lookup_type("weft::detail::FiberBase")
    live_offset = _base_offset(fiber_type, "LiveTag")
    head = hub["live_"]["head_"]
    head_address = int(head.address)
    running = int(hub["current_"])
    links_type = gdb.lookup_type("weft::detail::ListLinks")
    fibers = []
    links = int(head["next"])
    limit = int(hub["live_"]["size_"]) + 1  # a list torn in a core must not loop for ever
    while links != head_address and links != 0 and len(fibers) < limit:
        address = links - live_offset
        fibers.append(Fiber(address, fiber_type, address == running))
        links = int(_member(links, links_type, "next"))
    return fibers


def _find_fiber(which):
    fibers = _live_fibers()
    if re.fullmatch(r"#?\d+", which):
        wanted = int(which.lstrip("#"))
        matches = [f for f in fibers if f.id == wanted]
    else:
        matches = [f for f in fibers if f.name == which]
    if not matches:
        raise gdb.GdbError("weft: no live fiber %s on this hub (see info weft-fibers)" % which)
    if len(matches) > 1:
        raise gdb.GdbError(
            "weft: %d fibers are named %s: give an id (%s)"
            % (len(matches), which, ", ".join(str(f.id) for f in matches))
        )
    fiber = matches[0]
    if fiber.running:
        raise gdb.GdbError("weft: fiber #%d runs now: its stack is the thread's (bt)" % fiber.id)
    if fiber.state == "created" or fiber.context == 0:
        raise gdb.GdbError("weft: fiber #%d has not started: it has no stack yet" % fiber.id)
    try:
        saved = gdb.selected_inferior().read_memory(fiber.context, _FRAME_SIZE).tobytes()
    except gdb.MemoryError:
        saved = bytes(_FRAME_SIZE)
    if struct.unpack_from("<Q", saved, _RESUME_OFFSET)[0] == 0:
        # gdb's gcore cannot read a mapping with MADV_GUARD_INSTALL guard pages
        # (Linux 6.13+) and leaves it out of the core, zeros in its place.
        raise gdb.GdbError(
            "weft: fiber #%d's saved registers at 0x%x are not readable: a core written by "
            "gdb's gcore on Linux 6.13+ lacks fiber stacks (see docs/debugging.md)"
            % (fiber.id, fiber.context)
        )
    return fiber


# --- unwinding a switched-out fiber ----------------------------------------------


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class FiberUnwinder(gdb.unwinder.Unwinder):
    """Makes a switched-out fiber's resume point the caller of frame #0."""

    def __init__(self):
        super().__init__("weft-fiber")
        self.context = None  # the fiber's saved fcontext, while one is shown
        self.thread = None  # the gdb thread whose frame #0 leads into it

    def show(self, context, end_at_fiber_entry):
        self.context = context
        self.thread = gdb.selected_thread().global_num
        _stack_end.enabled = end_at_fiber_entry
        gdb.invalidate_cached_frames()

    def hide(self):
        if self.context is not None:
            self.context = None
            _stack_end.enabled = False
            gdb.invalidate_cached_frames()

    def __call__(self, pending_frame):
        if self.context is None or pending_frame.level() != 0:
            return None
        thread = gdb.selected_thread()
        if thread is None or thread.global_num != self.thread:
            return None
        saved = gdb.selected_inferior().read_memory(self.context, _FRAME_SIZE).tobytes()
        pc = pending_frame.read_register("rip")
        sp_type = pending_frame.read_register("rsp").type
        # Frame #0 is given an id just below the fiber's stack: gdb accepts a
        # caller only if it lies above its callee on the stack.
        info = pending_frame.create_unwind_info(_FrameId(gdb.Value(self.context).cast(sp_type), pc))
        for register, offset in _SAVED_REGISTERS:
            (word,) = struct.unpack_from("<Q", saved, offset)
            register_type = pending_frame.read_register(register).type
            info.add_saved_register(register, gdb.Value(word).cast(register_type))
        info.add_saved_register("rsp", gdb.Value(self.context + _FRAME_SIZE).cast(sp_type))
        return info


class _NamedFrame(FrameDecorator):
    """Names a frame as gdb's own backtrace does (without the parameter list)."""

    def function(self):
        frame = self.inferior_frame()
        name = frame.name()
        return name if name is not None else frame.pc()


class FiberStackEnd:
    """A frame filter that ends a fiber's backtrace at HubCore::fiber_entry, the
    first frame on every fiber stack. Below it lies Boost.Context's trampoline,
    which has no unwind info: gdb would go on through whatever a stack taken
    from the pool still holds. Enabled only while a fiber is shown, so other
    backtraces stay gdb's own."""

    def __init__(self):
        self.name = "weft-fiber-stack-end"
        self.priority = 100
        self.enabled = False

    def filter(self, frames):
        for frame in frames:
            yield _NamedFrame(frame)
            if frame.inferior_frame().name() == "weft::detail::HubCore::fiber_entry":
                return


_unwinder = FiberUnwinder()
_stack_end = FiberStackEnd()
gdb.frame_filters[_stack_end.name] = _stack_end
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)
# A resumed program moves its fibers: what was shown no longer holds.
gdb.events.cont.connect(lambda _event: _unwinder.hide())


def _require_x86_64():
    if gdb.selected_inferior().architecture().name() != "i386:x86-64":
        raise gdb.GdbError("weft: fiber stacks are only understood on x86-64")


# --- commands -------------------------------------------------------------------


class InfoWeftFibers(gdb.Command):
    """The live fibers of the selected thread's hub: id, name, state, and what a
    suspended one waits on (as weft::dump_fibers() prints them)."""

    def __init__(self):
        super().__init__("info weft-fibers", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        for fiber in _live_fibers():
            gdb.write(fiber.line() + "\n")


class WeftBacktrace(gdb.Command):
    """weft-bt ID|NAME [BACKTRACE-ARGS]: the backtrace of a switched-out fiber of
    the selected thread's hub. BACKTRACE-ARGS go to gdb's backtrace (full, or a
    count N for the fiber's N innermost frames)."""

    def __init__(self):
        super().__init__("weft-bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            raise gdb.GdbError("usage: weft-bt ID|NAME [backtrace arguments]")
        _require_x86_64()
        fiber = _find_fiber(words[0])
        selected_level = gdb.selected_frame().level()
        # A count N means the fiber's N innermost frames: one more for frame #0.
        arguments = [str(int(w) + 1) if w.isdigit() else w for w in words[1:]]
        # gdb's own backtrace, not one printed through a frame filter (whose
        # argument printing trips over some libstdc++ pretty printers).
        _unwinder.show(fiber.context, end_at_fiber_entry=False)
        try:
            text = gdb.execute("backtrace -no-filters " + " ".join(arguments), to_string=True)
        finally:
            _unwinder.hide()
            gdb.execute("frame %d" % selected_level, to_string=True)
        gdb.write("fiber #%d %s %s\n" % (fiber.id, fiber.name, fiber.state))
        gdb.write(_fiber_frames(text))


def _fiber_frames(text):
    """gdb's backtrace of a shown fiber, renumbered from #0, less frame #0 (where
    the thread stopped) and what lies past HubCore::fiber_entry (see FiberStackEnd)."""
    out = []
    keep = False
    ended = False
    for line in text.splitlines(keepends=True):
        frame = re.match(r"#(\d+)\s+", line)
        if frame:
            if ended:
                break
            number = int(frame.group(1))
            keep = number > 0
            if keep:
                line = "#%-2d " % (number - 1) + line[frame.end() :]  # as gdb aligns them
                ended = " weft::detail::HubCore::fiber_entry " in line
        elif line.startswith(("Backtrace stopped", "(More stack frames")):
            if ended:
                break
            keep = True
        if keep:  # a frame's line, or the rest of one that a warning or `full` split
            out.append(line)
    return "".join(out)


class WeftFiber(gdb.Command):
    """weft-fiber ID|NAME: bt, frame, up, info locals... show that fiber's stack
    from frame #1 up (frame #0 stays where the thread stopped).
    weft-fiber off: back to the thread's own stack (so does resuming the program)."""

    def __init__(self):
        super().__init__("weft-fiber", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        which = argument.strip()
        if not which or which == "off":
            _unwinder.hide()
            return
        _require_x86_64()
        fiber = _find_fiber(which)
        _unwinder.show(fiber.context, end_at_fiber_entry=True)
        gdb.write(
            "fiber #%d %s: frames from #1 up are its stack (weft-fiber off to leave)\n"
            % (fiber.id, fiber.name)
        )


InfoWeftFibers()
WeftBacktrace()
WeftFiber()
