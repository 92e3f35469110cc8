//! Link options of the `asof` binary.

fn main() {
    // Relative relocations packed (DT_RELR, glibc 2.36 and later): the
    // binary's 250k of them took 6 MB that the loader read and applied on
    // every start, a quarter of a short command's time. The address space
    // stays randomised.
    println!("cargo:rustc-link-arg-bin=asof=-Wl,-z,pack-relative-relocs");
}
