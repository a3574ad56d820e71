//! The panic handler: message and location on the console, then crash the domain.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    match info.location() {
        Some(loc) => crate::println!(
            "Kernel panic: {} at {}:{}:{}",
            info.message(),
            loc.file(),
            loc.line(),
            loc.column()
        ),
        None => crate::println!("Kernel panic: {}", info.message()),
    }
    crate::reboot::machine_crash()
}
