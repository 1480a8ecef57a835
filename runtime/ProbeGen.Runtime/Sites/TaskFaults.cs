using System;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Threading.Tasks;

namespace ProbeGen;

/// <summary>
/// Reads a faulted task's exception for a return hit without changing what the program sees.
/// </summary>
/// <remarks>
/// Every public way to read a task's exception (<see cref="Task.Exception"/>, an await,
/// <c>GetResult</c>) marks it observed, and an observed exception never reaches
/// <see cref="TaskScheduler.UnobservedTaskException"/>. A probe must not change that, so after
/// reading, the task's exception holder is put back as it was: not handled, and registered for
/// finalization again (reading had suppressed its finalizer). The holder is the runtime's own
/// type; when its shape is not the expected one, nothing is read, and the hit reports a
/// <see cref="ProbeTaskFaultedException"/> instead of the task's exception.
/// </remarks>
internal static class TaskFaults
{
    private static readonly FieldInfo? s_contingentProperties = typeof(Task).GetField("m_contingentProperties", BindingFlags.Instance | BindingFlags.NonPublic);
    private static readonly FieldInfo? s_exceptionsHolder = FieldOf(s_contingentProperties, "m_exceptionsHolder");
    private static readonly FieldInfo? s_isHandled = FieldOf(s_exceptionsHolder, "m_isHandled");

    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Task's fields are in the core library, which is not trimmed below its own use; a missing field falls back.")]
    private static FieldInfo? FieldOf(FieldInfo? owner, string name) => owner?.FieldType.GetField(name, BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>True when exceptions can be read and put back unobserved on this runtime.</summary>
    internal static bool CanReadUnobserved => s_isHandled is not null && s_isHandled.FieldType == typeof(bool);

    /// <summary>The exception an <c>await</c> of the faulted or canceled <paramref name="task"/> throws, read without observing it.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Task's fields are in the core library, which is not trimmed below its own use; a missing field falls back.")]
    public static Exception Read(Task task)
    {
        if (task.IsCanceled)
            return new TaskCanceledException(task);
        object? holder = CanReadUnobserved ? s_exceptionsHolder!.GetValue(s_contingentProperties!.GetValue(task)) : null;
        if (holder is null)
            return new ProbeTaskFaultedException();
        // Only an exception nobody had observed yet is put back; one the program already observed stays so.
        bool wasHandled = (bool)s_isHandled!.GetValue(holder)!;
        AggregateException all = task.Exception!;
        if (!wasHandled)
        {
            s_isHandled.SetValue(holder, false);
            GC.ReRegisterForFinalize(holder);
        }
        return all.InnerExceptions.Count == 1 ? all.InnerExceptions[0] : all;
    }
}

/// <summary>
/// What a method probe's return hit reports for a faulted task when the runtime does not let
/// ProbeGen read the task's exception without marking it observed.
/// </summary>
public sealed class ProbeTaskFaultedException : Exception
{
    /// <summary>Creates the marker.</summary>
    public ProbeTaskFaultedException()
        : base("The task faulted; its exception is left unread so that the program observes it exactly as it would without the probe.")
    {
    }
}
