using System;
using System.IO;
using System.Text;

namespace ProbeGen.Cli.Target;

/// <summary>
/// Stdout for a streaming command. When whoever reads it goes away (<c>| head -1</c>), the first
/// failed write marks it closed and stops the run, instead of the write's exception ending the
/// process mid-session or the run streaming on into nowhere.
/// </summary>
internal sealed class GuardedOutput(TextWriter inner, Action onClosed) : TextWriter
{
    /// <summary>
    /// Stdout as a plain file stream on descriptor 1, with a large buffer and no flush per line (at
    /// 100k hits a second a write per line would be the bottleneck). Not <see cref="Console.OpenStandardOutput()"/>:
    /// the console stream swallows EPIPE, so a closed pipe would never be noticed.
    /// </summary>
    public static TextWriter StandardOutput() =>
        new StreamWriter(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1), new UTF8Encoding(false), 1 << 16) { AutoFlush = false };

    /// <summary>True once a write or flush failed because the reader went away.</summary>
    public bool Closed { get; private set; }

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value) => Guard(() => inner.Write(value));

    public override void Write(string? value) => Guard(() => inner.Write(value));

    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));

    public override void Flush() => Guard(inner.Flush);

    /// <summary>
    /// Writes text that is already UTF-8 (lines formatted straight from hit payloads). Over a stream
    /// writer the bytes go to its stream after any text it still holds, so the order is kept, with no
    /// round trip through UTF-16.
    /// </summary>
    public void WriteUtf8(ReadOnlySpan<byte> utf8)
    {
        if (Closed)
            return;
        try
        {
            if (inner is StreamWriter writer)
            {
                writer.Flush();
                writer.BaseStream.Write(utf8);
            }
            else
            {
                inner.Write(Encoding.UTF8.GetString(utf8));
            }
        }
        catch (IOException)
        {
            Closed = true;
            onClosed();
        }
    }

    /// <summary>
    /// Flushes, and notices a reader that went away even when there is nothing to write: a quiet
    /// trace piped into <c>head</c> must end too. poll(2) reports POLLERR on a pipe whose read end
    /// has closed.
    /// </summary>
    public void FlushAndCheck()
    {
        Flush();
        if (Closed)
            return;
        var fd = new PollFd { Fd = 1, Events = 0 };
        if (poll(ref fd, 1, 0) == 1 && (fd.Revents & (PollErr | PollHup)) != 0)
        {
            Closed = true;
            onClosed();
        }
    }

    private const short PollErr = 0x8, PollHup = 0x10;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int poll(ref PollFd fds, nuint count, int timeout);

    private void Guard(Action write)
    {
        if (Closed)
            return;
        try
        {
            write();
        }
        catch (IOException)
        {
            Closed = true;
            onClosed();
        }
    }
}
