/* Wine 8 lacks bcryptprimitives.dll, whose ProcessPrng Rust's std on
 * Windows imports for its random numbers (HashMap keys). This stand-in
 * answers it with RtlGenRandom (advapi32's SystemFunction036), which Wine
 * has. Built with mingw by .ci/wine/run and put beside the executables. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
