using System;
using System.IO;

namespace ProbeGen.Cli.Target;

/// <summary>
/// A read-only stream that copies every byte it reads into a second stream: the EventPipe stream
/// is parsed live and, byte for byte, saved as a <c>.nettrace</c> file that PerfView,
/// <c>dotnet-trace convert</c> and TraceEvent open.
/// </summary>
internal sealed class TeeStream(Stream source, Stream copy) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int read = source.Read(buffer, offset, count);
        copy.Write(buffer, offset, read);
        return read;
    }

    public override int Read(Span<byte> buffer)
    {
        int read = source.Read(buffer);
        copy.Write(buffer[..read]);
        return read;
    }

    public override void Flush() => copy.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            copy.Dispose();
        base.Dispose(disposing);
    }
}
