pub mod mat5;
